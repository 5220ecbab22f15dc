/* main.c: bin/avps, the one binary, dispatching to its subcommands. */
#include "commands.h"

#include <string.h>

#ifndef AVPS_VERSION
#define AVPS_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: avps <command> [options]   (run alone, or under mpirun / srun)\n"
    "commands:\n"
    "  eval pq    panoptic quality of COCO panoptic predictions, as panopticapi computes it\n"
    "  eval ap    COCO mask (or box) AP per class, as pycocotools' COCOeval computes it\n"
    "  convert    panoptic-to-instances: thing segments as COCO instances (RLE)\n"
    "  export     a head's outputs as COCO results JSON and semantic PNG label maps\n"
    "  import     a network's COCO results and semantic PNGs into a prediction store\n"
    "  combine    instance + semantic predictions into panoptic, as panopticapi's heuristic\n"
    "  fuse       two ends (simulated or stored) and a class table into COCO panoptic JSON + PNGs\n"
    "  tables     the paper's Tables 1-3 from the heads a run config names\n"
    "  run        the whole AntVisionPS evaluation (ensemble, class table, fusion, PQ) as one job\n"
    "  calibrate  the class table: which end gives each thing class its instances\n"
    "  infer      one image through a Mask R-CNN run by avps's own engine (COCO results)\n"
    "  show       pictures: results over the images, the Figure-4 layout (PNG)\n"
    "  synth      write a synthetic COCO-like panoptic ground truth and prediction\n"
    "  version    print the version\n"
    "Run 'avps <command> --help' for a command's options.\n";

typedef struct {
    const char *word1, *word2;
    int (*run)(avps_job *job, int argc, char **argv);
    const char *usage;
} command;

static const command commands[] = {
    {"eval", "pq", cmd_eval_pq, eval_pq_usage},
    {"eval", "ap", cmd_eval_ap, eval_ap_usage},
    {"synth", NULL, cmd_synth, synth_usage},
    {"convert", NULL, cmd_convert, convert_usage},
    {"export", NULL, cmd_export, export_usage},
    {"import", NULL, cmd_import, import_usage},
    {"combine", NULL, cmd_combine, combine_usage},
    {"run", NULL, cmd_run, run_usage},
    {"fuse", NULL, cmd_fuse, fuse_usage},
    {"tables", NULL, cmd_tables, tables_usage},
    {"calibrate", NULL, cmd_calibrate, calibrate_usage},
    {"infer", NULL, cmd_infer, infer_usage},
    {"show", NULL, cmd_show, show_usage},
};

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("avps %s\n", AVPS_VERSION);
        return 0;
    }
    for (size_t c = 0; c < sizeof commands / sizeof *commands; c++) {
        const command *cmd = &commands[c];
        int words = cmd->word2 ? 2 : 1;
        if (strcmp(argv[1], cmd->word1) != 0 || (cmd->word2 && (argc < 3 || strcmp(argv[2], cmd->word2) != 0)))
            continue;
        if (wants_help(argc - 1 - words, argv + 1 + words)) {
            fputs(cmd->usage, stdout);
            return 0;
        }
        avps_job *job = job_start(&argc, &argv);
        if (!job) {
            fprintf(stderr, "avps: error: cannot start MPI\n");
            return 1;
        }
        return job_finish(job, cmd->run(job, argc - 1 - words, argv + 1 + words));
    }
    fprintf(stderr, "avps: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
