#!/usr/bin/env python3
"""pan_colors.py: checks that a panoptic result shows its segmentation to the eye, as
panopticapi's IdGenerator colours it: every PNG's ids are exactly its JSON segments', a
stuff segment's id is its category's colour, a thing segment's id a colour within 30 per
channel of its category's, and every output category has a "color".
Usage: pan_colors.py PRED_JSON PNG_DIR   (exit 0 when all holds, else 1 with the reason)"""
import json
import os
import sys

import numpy as np
from PIL import Image


def fail(msg):
    print(msg)
    sys.exit(1)


def main(pred_json, png_dir):
    with open(pred_json) as f:
        d = json.load(f)
    cats = {c["id"]: c for c in d["categories"]}
    for c in cats.values():
        if len(c.get("color", [])) != 3:
            fail("category %d has no color" % c["id"])
    for a in d["annotations"]:
        rgb = np.array(Image.open(os.path.join(png_dir, a["file_name"])).convert("RGB"), dtype=np.uint32)
        ids = rgb[:, :, 0] + 256 * rgb[:, :, 1] + 65536 * rgb[:, :, 2]
        in_png = set(int(i) for i in np.unique(ids)) - {0}
        in_json = [s["id"] for s in a["segments_info"]]
        if in_png != set(in_json) or len(in_json) != len(set(in_json)):
            fail("image %s: PNG ids %s, JSON ids %s" % (a["image_id"], sorted(in_png), sorted(in_json)))
        for s in a["segments_info"]:
            c = cats[s["category_id"]]
            got = [s["id"] % 256, s["id"] // 256 % 256, s["id"] // 65536]
            dist = max(abs(g - b) for g, b in zip(got, c["color"]))
            if (c["isthing"] and dist > 30) or (not c["isthing"] and dist != 0):
                fail("image %s: segment %d: colour %s, category %d's is %s" %
                     (a["image_id"], s["id"], got, c["id"], c["color"]))
            if int((ids == s["id"]).sum()) != s["area"]:
                fail("image %s: segment %d: area %s, the PNG has %d" %
                     (a["image_id"], s["id"], s["area"], int((ids == s["id"]).sum())))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
