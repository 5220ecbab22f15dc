"""avps_store: writes an avps prediction store (docs/formats.md, "Prediction store") image
by image from a network's outputs, with numpy alone: arrays are plain .npy (the replay
head reads <image_id>.ss.npy where <image_id>.ss.npy.zst is absent, so no zstd is needed)
and binary masks become COCO's uncompressed RLE. Call it from an inference loop:

    import sys; sys.path.insert(0, "path/to/avps/scripts"); from avps_store import StoreWriter
    w = StoreWriter("store/net", "net", ss_kind="probs", categories=ids)   # ids of the C channels
    for image_id, image in dataset:
        probs, masks, labels, scores = model(image)        # (C, h, w); (N, H, W) bools; ...
        w.put(image_id, W, H, ss=probs, geometry={"scale": [s / 4, s / 4], "offset": [0, 0], "valid": [vw, vh]},
              instances=[{"category_id": int(c), "score": float(p), "mask": m}
                         for c, p, m in zip(labels, scores, masks)])
    w.finish()                                              # head.json last: the store is complete

ss_kind: "probs" or "logits" (C x h x w floats, kept as float16 or float32), "labels" (an
h x w map of channel indexes, 65535 = no class) or "none" (an instance-only end).
categories: the category of each channel, as the network numbers them; category_map maps
them to the dataset's ids (a dict, or a preset name such as "coco80", "coco133",
"mmdet-coco-panoptic"; docs/formats.md, "Category maps"). instances=False marks a
semantic-only end. An instance is {"category_id", "score"} with one of "mask" (H x W
bools), "segmentation" (COCO RLE, compressed or not), or "box" + "soft" + "paste" (a soft
mask, index into the soft_masks array given to put). Every file is written atomically."""
import json
import os

import numpy as np

__all__ = ["StoreWriter", "rle_counts"]


def rle_counts(mask):
    """COCO's uncompressed RLE of an H x W mask: run lengths in column-major order, from a
    run of 0s (empty when the first pixel is on)."""
    m = np.asarray(mask, dtype=bool).ravel(order="F")
    if m.size == 0:
        return []
    edges = np.flatnonzero(m[1:] != m[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [m.size]))).tolist()
    return [0] + runs if m[0] else runs


def _atomic(path, write):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def _save(path, array):
    _atomic(path, lambda f: np.save(f, np.ascontiguousarray(array)))


class StoreWriter:
    def __init__(self, folder, name, ss_kind="none", categories=(), category_map=None, instances=True):
        if ss_kind not in ("probs", "logits", "labels", "none"):
            raise ValueError("ss_kind must be probs, logits, labels or none, not %r" % (ss_kind,))
        categories = [int(c) for c in categories]
        if (ss_kind == "none") != (len(categories) == 0):
            raise ValueError("categories: one per channel, and none for ss_kind 'none'")
        self.folder, self.name, self.kind = folder, name, ss_kind
        self.categories, self.category_map, self.instances = categories, category_map, instances
        os.makedirs(folder, exist_ok=True)

    def _path(self, image_id, suffix):
        return os.path.join(self.folder, "%s%s" % (image_id, suffix))

    def _put_ss(self, image_id, ss):
        a = np.asarray(ss)
        c = len(self.categories)
        if self.kind == "labels":
            if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
                raise ValueError("image %s: a label map is h x w integers" % image_id)
            bad = (a != 65535) & ((a < 0) | (a >= c))
            if bad.any():
                raise ValueError("image %s: label %d is not a channel (0..%d, or 65535)" % (image_id, a[bad][0], c - 1))
            a = a.astype("<u2")
        else:
            if a.ndim != 3 or a.shape[0] != c or not np.issubdtype(a.dtype, np.floating):
                raise ValueError("image %s: scores are %d x h x w floats, not %s %s" % (image_id, c, a.shape, a.dtype))
            if not np.isfinite(a).all():
                raise ValueError("image %s: scores that are not finite" % image_id)
            a = a.astype("<f2" if a.dtype == np.float16 else "<f4")
        _save(self._path(image_id, ".ss.npy"), a)

    @staticmethod
    def _instance(image_id, k, inst, width, height):
        out = {"category_id": int(inst["category_id"]), "score": float(inst["score"])}
        if "mask" in inst:
            m = np.asarray(inst["mask"], dtype=bool)
            if m.shape != (height, width):
                raise ValueError("image %s: instance %d: a %s mask for a %dx%d image" % (image_id, k, m.shape, width, height))
            out["segmentation"] = {"size": [height, width], "counts": rle_counts(m)}
        elif "segmentation" in inst:
            seg = dict(inst["segmentation"])
            if isinstance(seg.get("counts"), bytes):
                seg["counts"] = seg["counts"].decode("ascii")  # pycocotools' encode gives bytes
            if list(seg.get("size", ())) != [height, width]:
                raise ValueError("image %s: instance %d: its RLE is not %dx%d" % (image_id, k, height, width))
            out["segmentation"] = {"size": [height, width], "counts": seg["counts"]}
        else:
            out.update(box=[float(v) for v in inst["box"]], soft=int(inst["soft"]), paste=inst.get("paste", "torchvision"))
        return out

    def put(self, image_id, width, height, ss=None, geometry=None, instances=(), soft_masks=None):
        """One image's outputs; its JSON is written last, after its arrays."""
        width, height = int(width), int(height)
        if (ss is None) != (self.kind == "none"):
            raise ValueError("image %s: give ss exactly when ss_kind is not 'none'" % image_id)
        if ss is not None:
            self._put_ss(image_id, ss)
        if soft_masks is not None:
            m = np.asarray(soft_masks)
            _save(self._path(image_id, ".masks.npy"), m.astype("<f2" if m.dtype == np.float16 else "<f4"))
        doc = {"width": width, "height": height,
               "instances": [self._instance(image_id, k, i, width, height) for k, i in enumerate(instances)]}
        if geometry is not None:
            doc["ss"] = {k: [float(v) for v in geometry[k]] for k in ("scale", "offset", "valid")}
        _atomic(self._path(image_id, ".json"), lambda f: f.write(json.dumps(doc).encode()))

    def finish(self):
        head = {"name": self.name, "ss_kind": self.kind, "categories": self.categories}
        if not self.instances:
            head["instances"] = False
        if self.category_map is not None:
            head["category_map"] = (self.category_map if isinstance(self.category_map, str)
                                    else {str(k): int(v) for k, v in self.category_map.items()})
        _atomic(os.path.join(self.folder, "head.json"), lambda f: f.write(json.dumps(head).encode()))
