#!/usr/bin/env python3
"""tile_ap_bench.py: a large COCO instance-segmentation set for scripts/bench-ap's memory
runs, made in seconds from a set gen_ap_bench.py made (which takes minutes per 100k
detections): the images, annotations and detections of SRC repeated N times, copy k with
image ids + k * 10^6 and annotation ids + k * (largest id). Detections are the same
masks with the same scores, so the file sizes and counts scale by N exactly.

usage: tile_ap_bench.py SRC OUT N
"""
import json
import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(src, "gt.json")) as f:
        gt = json.load(f)
    with open(os.path.join(src, "dt.json")) as f:
        dt = json.load(f)
    if max(im["id"] for im in gt["images"]) >= 10**6:
        sys.exit("tile_ap_bench: image ids of 10^6 and over would collide")
    step = max(a["id"] for a in gt["annotations"])
    images, anns, dets = [], [], []
    for k in range(n):
        off = k * 10**6
        images += [dict(im, id=im["id"] + off) for im in gt["images"]]
        anns += [dict(a, id=a["id"] + k * step, image_id=a["image_id"] + off) for a in gt["annotations"]]
        dets += [dict(d, image_id=d["image_id"] + off) for d in dt]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gt.json"), "w") as f:
        json.dump(dict(gt, images=images, annotations=anns), f, separators=(",", ":"))
    with open(os.path.join(out, "dt.json"), "w") as f:
        json.dump(dets, f, separators=(",", ":"))
    print(f"tile_ap_bench: {len(images)} images, {len(anns)} gt annotations, {len(dets)} detections -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
