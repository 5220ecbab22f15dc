"""bench_pq_peers.py: one timed PQ evaluation by another tool, for scripts/bench-pq.

    python3 bench_pq_peers.py TOOL THREADS GT_JSON PRED_JSON GT_DIR PRED_DIR

TOOL is one of
  hotcoco          hotcoco.panoptic.PanopticEval(...).evaluate(): it reads the JSON and PNGs itself
  vernier-png      vernier's BackgroundPanopticEvaluator fed each pair's PNG bytes (submit_png),
                   which vernier decodes in Rust on its own threads
  vernier-arrays   vernier's documented layout: label maps decoded with its own helper
                   (vernier.panoptic.decode_label_map_png, Pillow), Dataset/Predictions.from_arrays,
                   Evaluator(parity_mode="strict").evaluate(num_threads=THREADS)
Prints "seconds All-PQ cpu-seconds" timed from just before the JSON files are read to the
summary in hand, imports left out (cpu: this process's user + system, all its threads); for
vernier-arrays also the seconds and cpu of evaluate() alone, the arrays already decoded.
hotcoco's threads are set by RAYON_NUM_THREADS, which the caller sets.
"""
import json
import os
import sys
import time


def hotcoco(threads, gt_json, pred_json, gt_dir, pred_dir):
    from hotcoco import panoptic

    start, cpu = time.perf_counter(), time.process_time()
    ev = panoptic.PanopticEval(gt_json, pred_json, gt_folder=gt_dir, pred_folder=pred_dir)
    ev.evaluate()
    pq = ev.results()["All"]["pq"]
    return [time.perf_counter() - start, pq, time.process_time() - cpu]


def load_pairs(gt_json, pred_json):
    with open(gt_json) as f:
        gt = json.load(f)
    with open(pred_json) as f:
        pred = json.load(f)
    pred_of = {a["image_id"]: a for a in pred["annotations"]}
    return gt, [(a, pred_of[a["image_id"]]) for a in gt["annotations"]]


def vernier_png(threads, gt_json, pred_json, gt_dir, pred_dir):
    from vernier._core import BackgroundPanopticEvaluator

    start, cpu = time.perf_counter(), time.process_time()
    gt, pairs = load_pairs(gt_json, pred_json)
    ev = BackgroundPanopticEvaluator(json.dumps(gt["categories"]).encode(), "strict", num_threads=threads)
    for g, p in pairs:
        with open(os.path.join(gt_dir, g["file_name"]), "rb") as f:
            g_png = f.read()
        with open(os.path.join(pred_dir, p["file_name"]), "rb") as f:
            p_png = f.read()
        ev.submit_png(g["image_id"], g_png, json.dumps(g["segments_info"]).encode(), p_png,
                      json.dumps(p["segments_info"]).encode())
    pq = ev.finalize().pq
    return [time.perf_counter() - start, pq, time.process_time() - cpu]


def vernier_arrays(threads, gt_json, pred_json, gt_dir, pred_dir):
    import vernier.panoptic as vp

    start, cpu = time.perf_counter(), time.process_time()
    gt, pairs = load_pairs(gt_json, pred_json)
    g_maps, g_info, p_maps, p_info = {}, {}, {}, {}
    for g, p in pairs:
        i = g["image_id"]
        g_maps[i] = vp.decode_label_map_png(os.path.join(gt_dir, g["file_name"]))
        p_maps[i] = vp.decode_label_map_png(os.path.join(pred_dir, p["file_name"]))
        g_info[str(i)], p_info[str(i)] = g["segments_info"], p["segments_info"]
    g_set = vp.Dataset.from_arrays(g_maps, json.dumps(g_info).encode(), json.dumps(gt["categories"]).encode())
    p_set = vp.Predictions.from_arrays(p_maps, json.dumps(p_info).encode())
    eval_start, eval_cpu = time.perf_counter(), time.process_time()
    pq = vp.Evaluator(parity_mode="strict").evaluate(g_set, p_set, num_threads=threads).pq
    end, end_cpu = time.perf_counter(), time.process_time()
    return [end - start, pq, end_cpu - cpu, end - eval_start, end_cpu - eval_cpu]


TOOLS = {"hotcoco": hotcoco, "vernier-png": vernier_png, "vernier-arrays": vernier_arrays}


def main():
    tool, threads = sys.argv[1], int(sys.argv[2])
    out = TOOLS[tool](threads, *sys.argv[3:7])
    print(" ".join("%.17g" % v if i == 1 else "%.4f" % v for i, v in enumerate(out)))


if __name__ == "__main__":
    main()
