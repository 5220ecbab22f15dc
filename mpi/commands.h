/* commands: the subcommands of bin/avps. Each parses its own arguments, runs under the
 * job (MPI or alone) and returns main's exit status; failures end the job via job_fail. */
#ifndef AVPS_COMMANDS_H
#define AVPS_COMMANDS_H

#include "job.h"

extern const char eval_pq_usage[];
extern const char synth_usage[];
extern const char eval_ap_usage[];
extern const char convert_usage[];
extern const char export_usage[];
extern const char import_usage[];
extern const char combine_usage[];
extern const char run_usage[];
extern const char fuse_usage[];
extern const char tables_usage[];
extern const char calibrate_usage[];
extern const char infer_usage[];
extern const char show_usage[];

int cmd_eval_pq(avps_job *job, int argc, char **argv);
int cmd_synth(avps_job *job, int argc, char **argv);
int cmd_eval_ap(avps_job *job, int argc, char **argv);
int cmd_convert(avps_job *job, int argc, char **argv);
int cmd_export(avps_job *job, int argc, char **argv);
int cmd_import(avps_job *job, int argc, char **argv);
int cmd_combine(avps_job *job, int argc, char **argv);
int cmd_run(avps_job *job, int argc, char **argv);
int cmd_fuse(avps_job *job, int argc, char **argv);
int cmd_tables(avps_job *job, int argc, char **argv);
int cmd_calibrate(avps_job *job, int argc, char **argv);
int cmd_infer(avps_job *job, int argc, char **argv);
int cmd_show(avps_job *job, int argc, char **argv);

#endif
