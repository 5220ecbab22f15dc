#!/usr/bin/env python3
"""upsnet_compare.py: compares `avps infer --dump-dir` stages of UPSNet with the answer
keys of shared/reference/upsnet (README section 5 tolerances). numpy only.

usage: upsnet_compare.py KEY_DIR DUMP_DIR STAGE...
A stage is a key's file name without .npy. Prints "FAIL: stage: why" per failure, then
"N passed, N failed". Rules by stage:
  continuous tensors (input, res*, fpn_p*, sem_logits*, rpn_*, pan_mask_logits):
      same shape, relative L2 <= 1e-4 (input: max abs <= 1e-3, it is exact up to the
      resize's float rounding)
  probabilities (rcnn_cls_prob, det_mask_probs): max abs <= 1e-3
  label maps (sem_labels, pan_labels and their _image forms): equal wherever the key's
      margin (sem_margin / pan_margin, at the map's geometry) is >= 1e-3, and at most 36
      pixels below it
  im_info: equal to float32 precision
"""
import os
import sys

import numpy as np

LABEL_MARGIN = {"sem_labels": "sem_margin", "sem_labels_image": "sem_margin",
                "pan_labels": "pan_margin", "pan_labels_image": "pan_margin"}
PROBS = {"rcnn_cls_prob", "det_mask_probs"}


def rel_l2(a, e):
    a, e = a.astype(np.float64), e.astype(np.float64)
    return np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30)


def margin_at(key_dir, name, shape, im_info):
    m = np.load(os.path.join(key_dir, LABEL_MARGIN[name] + ".npy"))
    if m.shape == shape:
        return m
    # the _image maps: crop to the resized image, nearest resize by 1 / im_scale
    h, w, s = int(im_info[0, 0]), int(im_info[0, 1]), float(im_info[0, 2])
    f = 1.0 / s
    ys = np.minimum(np.floor(np.arange(shape[0]) * (1.0 / f)).astype(int), h - 1)
    xs = np.minimum(np.floor(np.arange(shape[1]) * (1.0 / f)).astype(int), w - 1)
    return m[:h, :w][ys][:, xs]


def check(key_dir, dump_dir, name):
    kp, dp = os.path.join(key_dir, name + ".npy"), os.path.join(dump_dir, name + ".npy")
    if not os.path.exists(dp):
        return "not written"
    e, a = np.load(kp), np.load(dp)
    if a.shape != e.shape:
        return f"shape {a.shape}, key {e.shape}"
    if name in LABEL_MARGIN:
        if a.dtype != e.dtype:
            return f"dtype {a.dtype}, key {e.dtype}"
        m = margin_at(key_dir, name, e.shape, np.load(os.path.join(key_dir, "im_info.npy")))
        diff = a != e
        low = m < 1e-3
        if (diff & ~low).any():
            return f"{int((diff & ~low).sum())} pixels differ where the margin is >= 1e-3"
        if int(low.sum()) > 36 and diff.any():
            return f"{int(low.sum())} low-margin pixels (> 36) and {int(diff.sum())} differ"
        return None
    if name == "im_info":
        return None if np.array_equal(a.astype(np.float32), e) else f"{a} vs {e}"
    if not np.isfinite(a).all():
        return "not finite"
    if name in PROBS:
        d = float(np.abs(a.astype(np.float64) - e).max()) if e.size else 0.0
        return None if d <= 1e-3 else f"max abs {d:.3g} > 1e-3"
    if name == "input":
        d = float(np.abs(a.astype(np.float64) - e).max())
        return None if d <= 1e-3 else f"max abs {d:.3g} > 1e-3"
    r = rel_l2(a, e)
    return None if r <= 1e-4 else f"relative L2 {r:.3g} > 1e-4 (max abs {np.abs(a - e).max():.3g})"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    key_dir, dump_dir = sys.argv[1], sys.argv[2]
    passed = failed = 0
    for name in sys.argv[3:]:
        try:
            why = check(key_dir, dump_dir, name)
        except Exception as ex:  # a broken dump is a failure, not a crash
            why = f"{type(ex).__name__}: {ex}"
        if why:
            print(f"FAIL: {name}: {why}")
            failed += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
