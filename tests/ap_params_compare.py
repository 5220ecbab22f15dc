"""ap_params_compare.py: `avps eval ap` with COCOeval's Params against pycocotools itself.

Reads a manifest, one run a line, tab-separated:
    NAME  GT  DT  AVPS_JSON  AVPS_NPZ  AVPS_STDOUT  FLAG...
where FLAG... are the avps options of the run (--iou-thrs 0.5,0.75 ...). For each run it
sets the same Params on pycocotools' COCOeval, evaluates, accumulates and summarizes, and
compares exactly (==, not a tolerance): the 12 stats; precision, recall and scores of the
.npz (zip CRCs checked) with COCOeval.eval's; per class, the six AP rows computed from
pycocotools' precision the way summarize selects them; the summary lines printed.
Prints "FAIL: ..." per mismatch and, last, "PASSED FAILED" as two numbers.
Usage: python ap_params_compare.py MANIFEST
"""
import contextlib
import io
import json
import sys
import zipfile

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def parse_flags(flags):
    """The avps flags as (iou type, a function that sets them on a Params)."""
    iou_type, sets = "segm", []
    i = 0
    while i < len(flags):
        f = flags[i]
        if f == "--no-use-cats":
            sets.append(lambda p: setattr(p, "useCats", 0))
            i += 1
            continue
        v = flags[i + 1]
        i += 2
        items = v.split(",")
        if f == "--iou-type":
            iou_type = v
        elif f == "--iou-thrs":
            sets.append(lambda p, x=items: setattr(p, "iouThrs", np.array([float(s) for s in x])))
        elif f == "--rec-thrs":
            sets.append(lambda p, x=items: setattr(p, "recThrs", np.array([float(s) for s in x])))
        elif f == "--max-dets":
            sets.append(lambda p, x=items: setattr(p, "maxDets", [int(s) for s in x]))
        elif f == "--area-rng":
            rng = [s.split(":") for s in items]
            def set_area(p, r=rng):
                p.areaRng = [[float(lo), float(hi)] for _, lo, hi in r]
                p.areaRngLbl = [lbl for lbl, _, _ in r]
            sets.append(set_area)
        elif f == "--cat-ids":
            sets.append(lambda p, x=items: setattr(p, "catIds", [int(s) for s in x]))
        elif f == "--img-ids":
            sets.append(lambda p, x=items: setattr(p, "imgIds", [int(s) for s in x]))
        else:
            raise SystemExit(f"ap_params_compare.py: unknown flag {f}")
    return iou_type, sets


def class_rows(E, k):
    """summarize's six AP rows, restricted to class k of precision."""
    p = E.params
    out = []
    md2 = p.maxDets[2]
    for iou, area, md in [(None, "all", 100), (.5, "all", md2), (.75, "all", md2),
                          (None, "small", md2), (None, "medium", md2), (None, "large", md2)]:
        aind = [i for i, a in enumerate(p.areaRngLbl) if a == area]
        mind = [i for i, m in enumerate(p.maxDets) if m == md]
        s = E.eval["precision"]
        if iou is not None:
            s = s[np.where(iou == p.iouThrs)[0]]
        s = s[:, :, k:k + 1][:, :, :, aind, mind]
        out.append(-1 if len(s[s > -1]) == 0 else np.mean(s[s > -1]))
    return out


def check_run(name, gt, dt, js, npz, stdout, flags, fail):
    iou_type, sets = parse_flags(flags)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        cg = COCO(gt)
        cd = cg.loadRes(dt)
        E = COCOeval(cg, cd, iou_type)
        for s in sets:
            s(E.params)
        E.evaluate()
        E.accumulate()
        E.summarize()
    n_fail = 0
    ours = json.load(open(js))
    for i, key in enumerate(STATS):
        if ours["stats"][key] != E.stats[i]:
            n_fail += fail(f"{name}: stats.{key} {ours['stats'][key]!r} != pycocotools {E.stats[i]!r}")
    with zipfile.ZipFile(npz) as z:
        bad = z.testzip()
        if bad is not None:
            n_fail += fail(f"{name}: {npz}: member {bad} fails its CRC")
    arrays = np.load(npz)
    for key in ["precision", "recall", "scores"]:
        a, b = arrays[key], E.eval[key]
        if a.dtype != np.float64 or a.shape != b.shape or not np.array_equal(a, b):
            where = "" if a.shape != b.shape else f", first at {np.argwhere(a != b)[:1].tolist()}"
            n_fail += fail(f"{name}: {key} {a.dtype} {a.shape} differs from pycocotools' {b.shape}{where}")
    cats = E.params.catIds if E.params.useCats else [-1]
    for k, c in enumerate(cats):
        want = class_rows(E, k)
        for row, key in enumerate(STATS[:6]):
            got = ours[f"per_class_{key}"].get(str(c))
            if got != want[row]:
                n_fail += fail(f"{name}: per_class_{key}[{c}] {got!r} != {want[row]!r}")
    if len(ours["per_class_AP"]) != len(cats):
        n_fail += fail(f"{name}: {len(ours['per_class_AP'])} classes, pycocotools has {len(cats)}")
    want_lines = [l for l in printed.getvalue().splitlines() if l.startswith(" Average")]
    got_lines = [l for l in open(stdout).read().splitlines() if l.startswith(" Average")]
    if want_lines != got_lines:
        n_fail += fail(f"{name}: summary lines differ: {got_lines[:2]} vs {want_lines[:2]}")
    return n_fail


def main():
    passed = failed = 0

    def fail(msg):
        print("FAIL: " + msg)
        return 1

    for line in open(sys.argv[1]):
        f = line.rstrip("\n").split("\t")
        if len(f) < 6:
            continue
        try:
            n = check_run(*f[:6], [x for x in f[6:] if x], fail)
        except Exception as e:  # a crash of either side is a failure of this run
            n = fail(f"{f[0]}: {type(e).__name__}: {e}")
        passed += n == 0
        failed += n != 0
    print(passed, failed)


if __name__ == "__main__":
    main()
