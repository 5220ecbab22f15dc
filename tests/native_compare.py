#!/usr/bin/python3
"""native_compare.py: compares avps's native engine with torchvision, stage by stage.

    /usr/bin/python3 tests/native_compare.py STAGE REF_DIR OUT_DIR

REF_DIR holds scripts/native-reference's ref_*.npy, OUT_DIR what `avps infer --dump-dir`
wrote. Stages:
  input      the normalised, resized, padded batch: the same shape, and the same values
             to the bit where torch runs its AVX2/AVX512 kernels (their bilinear sums are
             fused multiply-adds, which avps matches), else within 1e-6 of the largest
  fpn        every FPN level: ||a - b|| / ||b|| <= 1e-4
  proposals  RPN proposals: >= 99 % of the reference's have a native proposal with box IoU
             > 0.99 or all coordinates within 0.02 px (near-tied scores from random
             weights may swap the last few)
  heads      run fed the reference proposals: >= 99 % of the reference detections found
             (same class, IoU > 0.999, score within 1e-4), their 28 x 28 masks
             ||a - b|| / ||b|| <= 1e-4, and as many detections as the reference
  e2e        the whole network: >= 95 % of the reference detections found (same class, box
             IoU > 0.98, score within 1e-3, pasted mask IoU > 0.9)
Prints one line per failed check and "N passed, N failed"; with NATIVE_COMPARE_VERBOSE=1
also a "value:" line per measured figure (scripts/native-resize-parity records them)."""
import os
import sys

import numpy as np

passed = failed = 0


def value(what, v):
    if os.environ.get("NATIVE_COMPARE_VERBOSE") == "1":
        print("value: %s %s" % (what, v))


def torch_fuses_bilinear():
    """torch's CPU capability is AVX2 or better (its kernels are built with FMA contraction)."""
    try:
        import torch
        return any(c in torch.__config__.show() for c in ("CPU capability usage: AVX2", "CPU capability usage: AVX512"))
    except ImportError:
        return False


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def rel(a, b):
    return float(np.linalg.norm((a.astype(np.float64) - b).ravel()) / max(np.linalg.norm(b.astype(np.float64).ravel()), 1e-30))


def iou_matrix(a, b):
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def match(ref, out, iou_min, score_tol):
    """For each reference detection, the index of an unused native one of the same class,
    box IoU > iou_min and score within score_tol (best IoU), or -1."""
    iou = iou_matrix(ref["boxes"], out["boxes"]) if len(out["boxes"]) else np.zeros((len(ref["boxes"]), 0))
    used = np.zeros(len(out["boxes"]), bool)
    found = np.full(len(ref["boxes"]), -1)
    for i in range(len(ref["boxes"])):
        ok = (out["labels"] == ref["labels"][i]) & (np.abs(out["scores"] - ref["scores"][i]) <= score_tol) & \
             (iou[i] > iou_min) & ~used
        if ok.any():
            j = int(np.argmax(np.where(ok, iou[i], -1)))
            used[j] = True
            found[i] = j
    return found


def load(d, prefix):
    return {k: np.load("%s/%s%s.npy" % (d, prefix, k)) for k in ("boxes", "scores", "labels", "masks28")}


def main(stage, ref_dir, out_dir):
    if stage == "input":
        a, b = np.load(out_dir + "/input.npy"), np.load(ref_dir + "/ref_input.npy")
        check(a.shape == b.shape, "input: shape %s, reference %s" % (a.shape, b.shape))
        if a.shape == b.shape:
            diff = float(np.abs(a.astype(np.float64) - b).max())
            value("input max_abs_diff", diff)
            value("input differing values", int((a != b).sum()))
            if torch_fuses_bilinear():
                check(diff == 0, "input: %d values differ (max %.3g), want none" % (int((a != b).sum()), diff))
            else:
                check(diff <= 1e-6 * float(np.abs(b).max()), "input: max difference %.3g" % diff)
    elif stage == "fpn":
        for k in ("0", "1", "2", "3", "pool"):
            a, b = np.load("%s/fpn_%s.npy" % (out_dir, k)), np.load("%s/ref_fpn_%s.npy" % (ref_dir, k))
            check(a.shape == b.shape, "fpn %s: shape %s, reference %s" % (k, a.shape, b.shape))
            if a.shape == b.shape:
                r = rel(a, b)
                value("fpn %s rel_err" % k, "%.3g" % r)
                check(r <= 1e-4, "fpn %s: relative error %.3g > 1e-4" % (k, r))
    elif stage == "proposals":
        a, b = np.load(out_dir + "/proposals.npy"), np.load(ref_dir + "/ref_proposals.npy")
        check(abs(len(a) - len(b)) <= max(2, len(b) // 100), "proposals: %d, reference %d" % (len(a), len(b)))
        # thin boxes (a fraction of a pixel wide) lose IoU to float rounding: a proposal
        # also counts as found when every coordinate is within 0.02 px
        best = iou_matrix(b, a).max(axis=1) if len(a) else np.zeros(len(b))
        near = np.abs(b[:, None, :].astype(np.float64) - a[None, :, :]).max(-1).min(1) if len(a) else best
        frac = float(((best > 0.99) | (near <= 0.02)).mean()) if len(b) else 1.0
        value("proposals found", "%.4f of %d" % (frac, len(b)))
        check(len(b) >= 100, "proposals: only %d to compare" % len(b))
        check(frac >= 0.99, "proposals: %.4f of the reference's found (IoU > 0.99), want 0.99" % frac)
    elif stage in ("heads", "e2e"):
        ref, out = load(ref_dir, "ref_"), load(out_dir, "")
        check(len(ref["boxes"]) >= 100, "%s: only %d reference detections" % (stage, len(ref["boxes"])))
        if stage == "heads":
            found = match(ref, out, 0.999, 1e-4)
            frac = float((found >= 0).mean())
            check(frac >= 0.99, "heads: %.4f of the reference detections found, want 0.99" % frac)
            check(len(out["boxes"]) == len(ref["boxes"]), "heads: %d detections, reference %d" % (len(out["boxes"]), len(ref["boxes"])))
            i = found >= 0
            if i.any():
                r = rel(out["masks28"][found[i]], ref["masks28"][i])
                check(r <= 1e-4, "heads: 28x28 masks' relative error %.3g > 1e-4" % r)
        else:
            found = match(ref, out, 0.98, 1e-3)
            ref_m, out_m = np.load(ref_dir + "/ref_masks.npy"), np.load(out_dir + "/masks.npy")
            good = 0
            for i, j in enumerate(found):
                if j < 0:
                    continue
                a, b = ref_m[i].astype(bool), out_m[j].astype(bool)
                union = (a | b).sum()
                if union == 0 or (a & b).sum() / union > 0.9:
                    good += 1
            frac = good / max(len(found), 1)
            value("e2e found", "%d of %d" % (good, len(found)))
            check(frac >= 0.95, "e2e: %.4f of the reference detections found with their masks, want 0.95" % frac)
    else:
        print("native_compare.py: unknown stage %s" % stage)
        return 2
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
