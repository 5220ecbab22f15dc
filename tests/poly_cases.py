"""poly_cases.py: polygons partly or wholly outside their image, with pycocotools' runs.

Writes one case a line, "h w k x0 y0 ... m c0 c1 ...", for tests/unit_rle.c to check
rle_from_polygon against: the runs are frPyObjects' compressed counts, decoded here.
KIND "outside" (the default): small images, points far past every side; "coco": COCO-size
images, up to 60 points around the image with 2 decimals, as annotations have them;
"grid": points on the 0.1-pixel grid, where COCO's column and row tests land exactly.
Usage: python poly_cases.py SEED COUNT [KIND] > cases.txt
"""
import math
import random
import sys

from pycocotools import mask as mask_util


def decode_counts(s):
    """COCO's compressed counts (6 bits a character, deltas from two runs back) as ints."""
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coordinate(rng, size):
    kind = rng.random()
    if kind < 0.15:
        return rng.choice([-1e5, 1e5, -2e4, 3e4]) * rng.random()
    if kind < 0.3:
        return float(rng.randint(-size, 2 * size))
    if kind < 0.4:
        return rng.randint(-3 * size, 3 * size) + rng.choice([-0.1, 0.1, 0.5, -0.5])
    return rng.uniform(-2 * size, 3 * size)


def outside_case(rng):
    h, w = rng.randint(1, 40), rng.randint(1, 40)
    k = rng.randint(3, 7)  # frPyObjects takes 4 numbers as a box
    xy = []
    for _ in range(k):
        xy += [coordinate(rng, w), coordinate(rng, h)]
    return h, w, k, xy


def coco_case(rng):
    h, w = rng.randint(100, 640), rng.randint(100, 640)
    k = rng.randint(3, 60)
    cx, cy = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
    rad = rng.uniform(1, 0.5 * (w + h))
    xy = []
    for j in range(k):
        a, d = 2 * math.pi * (j + rng.random() * 0.5) / k, rad * rng.uniform(0.2, 1)
        xy += [round(cx + d * math.cos(a), 2), round(cy + d * math.sin(a), 2)]
    return h, w, k, xy


def grid_case(rng):
    h, w = rng.randint(1, 12), rng.randint(1, 12)
    k = rng.randint(3, 8)
    x0, y0 = rng.uniform(-1, w), rng.uniform(-1, h)
    xy = []
    for _ in range(k):
        xy += [round(rng.uniform(x0, x0 + 4) * 10) / 10, round(rng.uniform(y0, y0 + 4) * 10) / 10]
    return h, w, k, xy


def main():
    rng = random.Random(int(sys.argv[1]))
    make = {"outside": outside_case, "coco": coco_case, "grid": grid_case}[sys.argv[3] if len(sys.argv) > 3 else "outside"]
    for _ in range(int(sys.argv[2])):
        h, w, k, xy = make(rng)
        if k > 1 and rng.random() < 0.2:  # a repeated vertex: COCO's 0/0 edge
            xy[2:4] = xy[0:2]
        rle = mask_util.frPyObjects([xy], h, w)[0]
        counts = decode_counts(rle["counts"])
        nums = " ".join(repr(v) for v in xy)
        print(h, w, k, nums, len(counts), " ".join(str(c) for c in counts))


main()
