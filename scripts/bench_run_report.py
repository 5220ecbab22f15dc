#!/usr/bin/env python3
"""bench_run_report.py: the figures of scripts/bench-run, from what each run left in
OUT/npN (timings.json, report.json, panoptic.json + panoptic/) and OUT/rssN (each rank's
/usr/bin/time line: peak RSS KiB, user s, sys s, elapsed s; the load average at its end).

  bench_run_report.py --one OUT N      one rank count's block
  bench_run_report.py OUT N1 N2 ...    the table of every rank count, the speedups and
                                       the byte-for-byte comparison of the reports

CPU seconds are the figure to read on a shared machine: wall time and images/s there
say as much about the neighbours. Every CPU figure is of the evaluation pass alone
(timings.json), except the /usr/bin/time column, which is the whole process."""
import filecmp
import json
import os
import sys


def load(out, n):
    d = os.path.join(out, "np%s" % n)
    r = os.path.join(out, "rss%s" % n)
    t = json.load(open(os.path.join(d, "timings.json")))
    ranks = []
    for k in range(int(n)):
        peak, user, sys_s, elapsed = open(os.path.join(r, "rank%d" % k)).read().split()[:4]
        ranks.append({"peak_kib": int(peak), "cpu": float(user) + float(sys_s), "elapsed": float(elapsed)})
    load_avg = open(os.path.join(r, "loadavg")).read().strip() if os.path.exists(os.path.join(r, "loadavg")) else "?"
    return {"n": int(n), "dir": d, "t": t, "time": ranks, "load": load_avg}


def mib(kib):
    return "%.1f MB" % (kib * 1024 / 1e6)


def estimate(run):
    """Seconds the pass would take with a core per thread and the work shared evenly: all
    ranks' CPU and their waits for work, over the threads."""
    t = run["t"]
    return sum(s["cpu_seconds"] + s["wait_seconds"] for s in t["rank_stats"]) / (t["threads"] * run["n"])


def one(run):
    t = run["t"]
    images = t["images_this_run"]
    print("   %.2f images/s over %d images (evaluate stage %.1f s wall); CPU %.4f s per image, all ranks"
          % (t["images_per_second"], images, t["stages_wall_seconds"]["evaluate"], t["cpu_seconds_per_image"]))
    print("   %-9s %7s %8s %9s %11s %8s %9s %8s %8s %19s %10s" % ("rank", "images", "CPU s", "CPU/image",
          "main thr. s", "wait s", "wait max", "at end", "requests", "round trip mean/max", "peak RSS"))
    for k, s in enumerate(t["rank_stats"]):
        trip = "%.1f/%.1f ms" % (1e3 * s["request_seconds"] / s["requests"], 1e3 * s["request_max_seconds"]) \
            if s["requests"] else "-"
        print("   %-9s %7d %8.1f %9.4f %11.3f %8.3f %9.3f %8.3f %8d %19s %10s" % (
            "%d%s" % (k, " (root)" if k == 0 else ""), s["images"], s["cpu_seconds"], s["cpu_seconds_per_image"],
            s["main_thread_cpu_seconds"], s["wait_seconds"], s["wait_max_seconds"], s.get("wait_end_seconds", 0),
            s["requests"], trip, mib(run["time"][k]["peak_kib"])))
    print("   (CPU: the process during the evaluation pass; main thr.: its main thread, the root's scheduling,\n"
          "   MPI and fold, another rank's requests and sends; wait: its worker threads blocked for an item that\n"
          "   came, at end: for the word that none is left; round trip: from a request to its chunk)")
    cpu = t["steps_cpu_seconds"]
    wall = t["steps_thread_seconds"]
    total = sum(cpu.values()) or 1
    print("   steps, thread CPU s per image (share; wall thread s in all): " + ", ".join(
        "%s %.4f (%.0f%%; %.1f s)" % (k, v / images, 100 * v / total, wall[k]) for k, v in cpu.items()) +
        " (heads include the GT decode and the ensemble)")
    root = t["rank_stats"][0]
    share = t["root_main_thread_cpu_seconds_per_image"]
    print("   root: main thread %.2f ms CPU per image (the fold %.3f ms of it; the rest MPI and scheduling), "
          "requests held back %.3f s (window full); at %.3f CPU s per image it could feed about %d ranks"
          % (1e3 * share, 1e3 * t["root_fold_cpu_seconds_per_image"], root["held_seconds"],
             t["cpu_seconds_per_image"], t["cpu_seconds_per_image"] / share if share > 0 else 0))
    waits = sum(s["wait_seconds"] for s in t["rank_stats"])
    busy = sum(s["cpu_seconds"] for s in t["rank_stats"]) or 1
    print("   workers waited for work %.3f s in all, %.2f ms per image (%.2f%% of their CPU time); "
          "load average at the end %s" % (waits, 1e3 * t["wait_seconds_per_image"], 100 * waits / busy, run["load"]))


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(os.path.join(a, s), os.path.join(b, s)) for s in cmp.subdirs)


def table(runs):
    base = runs[0]
    print("== %d evaluation images; speedups against -np %d" % (base["t"]["images"], base["n"]))
    print("   %5s %9s %8s %10s %10s %11s %11s %13s %12s %10s  %s" % (
        "ranks", "images/s", "speedup", "speedup*", "CPU s/img", "whole CPU", "root RSS", "worker RSS max",
        "root ms/img", "wait ms", "load at end"))
    for run in runs:
        t = run["t"]
        images = t["images_this_run"]
        whole = sum(r["cpu"] for r in run["time"]) / images
        workers = [r["peak_kib"] for r in run["time"][1:]]
        print("   %5d %9.2f %7.2fx %9.2fx %10.4f %11.4f %11s %13s %12.2f %10.2f  %s" % (
            run["n"], t["images_per_second"], t["images_per_second"] / base["t"]["images_per_second"],
            estimate(base) / estimate(run), t["cpu_seconds_per_image"], whole, mib(run["time"][0]["peak_kib"]),
            mib(max(workers)) if workers else "-", 1e3 * t["root_main_thread_cpu_seconds_per_image"],
            1e3 * t["wait_seconds_per_image"], run["load"]))
    print("   speedup: of images/s (wall, at the machine's load); speedup*: with a core per thread and the\n"
          "   work shared evenly, from CPU + waits (what a quiet machine with enough cores would show, less the\n"
          "   imbalance of the last items); CPU s/img: the evaluation pass over all ranks; whole CPU: every\n"
          "   process from start to end (/usr/bin/time); root ms/img: the root's main thread (scheduling, MPI,\n"
          "   the fold); wait ms: worker threads blocked for their next item, per image")
    ok = True
    for run in runs[1:]:
        for name in ("report.json", "panoptic.json", "panoptic"):
            a, b = os.path.join(base["dir"], name), os.path.join(run["dir"], name)
            same = same_tree(a, b) if os.path.isdir(a) else filecmp.cmp(a, b, shallow=False)
            ok &= same
            print("   -np %d: %s %s -np %d's" % (run["n"], name, "identical to" if same else "DIFFERS from", base["n"]))
    return ok


def main(argv):
    if argv[1] == "--one":
        one(load(argv[2], argv[3]))
        return 0
    return 0 if table([load(argv[1], n) for n in argv[2:]]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
