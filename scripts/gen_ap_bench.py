#!/usr/bin/env python3
"""gen_ap_bench.py: deterministic COCO instance-segmentation data for scripts/bench-ap.

Writes OUT/gt.json (ground truth) and OUT/dt.json (results), unless both are there:

  images       IMAGES (1000) images of COCO-like sizes (640x480, 480x640, 640x427, ...),
               COCO-like sparse image ids
  categories   the 80 COCO categories (ids 1..90 with COCO's gaps)
  ground truth about 7 instances per image (1 to 15), star-shaped polygons whose sizes
               follow COCO's small/medium/large mix; about 1 image in 20 also has one
               crowd region (iscrowd 1) stored as uncompressed RLE. area is the mask
               area (pycocotools' mask.area), bbox the mask's box (mask.toBbox).
  results      DETS (100) detections per image, each a compressed RLE string made by
               pycocotools.mask.encode: perturbed copies of the ground-truth masks
               (shifted, dilated or eroded by a few pixels, a few with the wrong
               category) and false positives (random shapes and categories);
               random scores (true positives drawn a little higher).

Needs numpy and pycocotools; no network. Fixed seed (SEED, 2024): the same files on
every run with the same numpy.

--size WxH makes every image that size (scripts/bench-ap's dense layout: small images,
many detections each).

usage: gen_ap_bench.py OUT [--images N] [--dets N] [--seed S] [--size WxH] [--force]
"""
import argparse
import json
import os
import sys

import numpy as np
from pycocotools import mask as mask_util

COCO_CAT_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
SIZES = [(640, 480), (480, 640), (640, 427), (427, 640), (640, 425), (500, 375), (640, 512), (612, 612)]
SIZE_P = [0.35, 0.15, 0.2, 0.08, 0.07, 0.05, 0.05, 0.05]


def star_polygon(rng, w, h, cx=None, cy=None, r=None):
    """A random star-shaped polygon as a flat [x1, y1, x2, y2, ...] list, clipped to the image."""
    if r is None:
        # log-uniform radius: about 40% small (< 32^2 px), 35% medium, 25% large, as in COCO
        r = float(np.exp(rng.uniform(np.log(3.0), np.log(min(w, h) * 0.45))))
    if cx is None:
        cx = rng.uniform(0, w)
        cy = rng.uniform(0, h)
    n = int(rng.integers(8, 25))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.55, 1.0, n)
    sx = rng.uniform(0.6, 1.4)
    xs = np.clip(cx + sx * rad * np.cos(ang), 0, w - 1)
    ys = np.clip(cy + rad * np.sin(ang) / sx, 0, h - 1)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def poly_mask(poly, h, w):
    """The polygon rasterized by pycocotools, as a Fortran-ordered uint8 h x w array."""
    rle = mask_util.merge(mask_util.frPyObjects([poly], h, w))
    return mask_util.decode(rle)


def perturb(rng, m):
    """m shifted by a few pixels, then dilated or eroded once or twice (4-neighbourhood)."""
    dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
    out = np.roll(np.roll(m, dy, axis=0), dx, axis=1)
    for _ in range(int(rng.integers(0, 3))):
        grow = rng.random() < 0.5
        b = out.astype(bool)
        n = [np.roll(b, 1, 0), np.roll(b, -1, 0), np.roll(b, 1, 1), np.roll(b, -1, 1)]
        if grow:
            b = b | n[0] | n[1] | n[2] | n[3]
        else:
            b = b & n[0] & n[1] & n[2] & n[3]
        out = b.astype(np.uint8)
    return np.asfortranarray(out)


def uncompressed_rle(m):
    """COCO uncompressed RLE of a binary mask: run lengths in column-major order, 0s first."""
    flat = m.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts}


def encode(m):
    rle = mask_util.encode(np.asfortranarray(m))
    return rle, {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def box(rle):
    return [round(float(v), 2) for v in mask_util.toBbox(rle)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--dets", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--size", help="WxH: every image this size (default: COCO's mix of sizes)")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    gt_path, dt_path = os.path.join(a.out, "gt.json"), os.path.join(a.out, "dt.json")
    if not a.force and os.path.exists(gt_path) and os.path.exists(dt_path):
        print(f"gen_ap_bench: {gt_path} and {dt_path} are there, kept", file=sys.stderr)
        return
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)

    image_ids = np.sort(rng.choice(np.arange(1, 600000), a.images, replace=False))
    images, anns, dets = [], [], []
    ann_id = 1
    for k, img_id in enumerate(image_ids):
        img_id = int(img_id)
        w, h = SIZES[int(rng.choice(len(SIZES), p=SIZE_P))]
        if a.size:
            w, h = (int(v) for v in a.size.split("x"))
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id:012d}.jpg"})
        # an image shows a few categories, each a few times
        img_cats = rng.choice(COCO_CAT_IDS, int(rng.integers(1, 5)), replace=False)
        n_gt = int(np.clip(rng.poisson(7), 1, 15))
        objs = []
        for _ in range(n_gt):
            cat = int(rng.choice(img_cats))
            poly = star_polygon(rng, w, h)
            rle = mask_util.merge(mask_util.frPyObjects([poly], h, w))
            area = float(mask_util.area(rle))
            if area < 1:
                continue
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat, "segmentation": [poly],
                         "area": area, "bbox": box(rle), "iscrowd": 0})
            ann_id += 1
            objs.append((cat, mask_util.decode(rle)))
        if rng.random() < 0.05:  # a crowd region: a large blob made of a few overlapping shapes
            cx, cy = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)
            m = np.zeros((h, w), np.uint8, order="F")
            for _ in range(3):
                m |= poly_mask(star_polygon(rng, w, h, cx + rng.normal(0, 30), cy + rng.normal(0, 30),
                                            rng.uniform(40, 120)), h, w)
            rle = mask_util.encode(np.asfortranarray(m))
            anns.append({"id": ann_id, "image_id": img_id, "category_id": int(rng.choice(img_cats)),
                         "segmentation": uncompressed_rle(m), "area": float(mask_util.area(rle)),
                         "bbox": box(rle), "iscrowd": 1})
            ann_id += 1

        img_dets = []
        for cat, m in objs:  # perturbed copies of each object
            for j in range(int(rng.integers(1, 5))):
                if j == 0 and rng.random() < 0.1:
                    continue  # a miss
                c = cat if rng.random() < 0.9 else int(rng.choice(COCO_CAT_IDS))
                score = rng.uniform(0.3, 1.0) if j == 0 else rng.uniform(0.0, 0.8)
                img_dets.append((c, score, perturb(rng, m)))
        while len(img_dets) < a.dets:  # false positives, some of the image's categories
            c = int(rng.choice(img_cats)) if rng.random() < 0.3 else int(rng.choice(COCO_CAT_IDS))
            m = poly_mask(star_polygon(rng, w, h), h, w)
            img_dets.append((c, rng.uniform(0.0, 0.7), m))
        for c, score, m in img_dets[: a.dets]:
            rle, seg = encode(m)
            if mask_util.area(rle) < 1:
                continue
            dets.append({"image_id": img_id, "category_id": c, "segmentation": seg,
                         "bbox": box(rle), "score": round(float(score), 6)})
        if (k + 1) % 100 == 0:
            print(f"gen_ap_bench: {k + 1}/{a.images} images", file=sys.stderr)

    cats = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in COCO_CAT_IDS]
    gt = {"info": {"description": "avps bench-ap synthetic set", "version": "1"}, "licenses": [],
          "images": images, "annotations": anns, "categories": cats}
    with open(gt_path + ".tmp", "w") as f:
        json.dump(gt, f, separators=(",", ":"))
    with open(dt_path + ".tmp", "w") as f:
        json.dump(dets, f, separators=(",", ":"))
    os.replace(gt_path + ".tmp", gt_path)
    os.replace(dt_path + ".tmp", dt_path)
    n_crowd = sum(x["iscrowd"] for x in anns)
    print(f"gen_ap_bench: {len(images)} images, {len(anns)} gt annotations ({n_crowd} crowd), "
          f"{len(dets)} detections -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
