#!/usr/bin/python3
"""make-seeds.py: writes the seed corpora of tests/fuzz/corpus/<harness>/ (small synthetic
files, valid ones and the reproducers of issue 12). Run from anywhere; rewrites the files
it names and leaves others (inputs the fuzzers found) in place."""
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import png_encode  # noqa: E402

rng = np.random.default_rng(12)


def put(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- PNG: every colour type x depth, tRNS, interlace; both reader paths ----
def png_cases():
    h, w = 5, 6
    for ct, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)), (4, (8, 16)), (6, (8, 16))):
        for depth in depths:
            for il in (0, 1):
                for trns in (0, 1):
                    if trns and ct in (4, 6):
                        continue
                    ch = png_encode.CHANNELS[ct]
                    top = (1 << depth) if ct != 3 else min(1 << depth, 7)
                    s = rng.integers(0, top, size=(h, w, ch))
                    pal = [(10 * i, 255 - 9 * i, 3 * i) for i in range(top)] if ct == 3 else None
                    t = None
                    if trns:
                        if ct == 3:
                            t = bytes([0, 128][: min(2, top)])
                        elif ct == 0:
                            t = struct.pack(">H", int(s[0, 0, 0]))
                        else:
                            t = struct.pack(">HHH", *[int(v) for v in s[0, 0]])
                    name = f"ct{ct}_d{depth}{'_trns' if trns else ''}{'_adam7' if il else ''}.png"
                    yield name, png_encode.encode(s, ct, depth, palette=pal, trns=t, interlace=il,
                                                  filters=None if depth == 8 else 0)


for name, data in png_cases():
    put("fuzz_png", name, data)
# issue 12 item 1: a P-mode image with transparency, as PIL writes it
im = Image.fromarray(rng.integers(0, 4, size=(4, 7)).astype(np.uint8), "P")
im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
buf = io.BytesIO()
im.save(buf, "PNG", transparency=1)
put("fuzz_png", "repro_pil_palette_trns.png", buf.getvalue())
# issue 12 item 2: 69 bytes claiming 46341 x 46341 (the fast path's RGB8, then Adam7)
for ct, il in ((2, 0), (2, 1), (3, 0)):
    hdr = b"\x89PNG\r\n\x1a\n" + png_encode.chunk(b"IHDR", struct.pack(">IIBBBBB", 46341, 46341, 8, ct, 0, 0, il))
    body = png_encode.chunk(b"IDAT", __import__("zlib").compress(b"\0" * 16)) + png_encode.chunk(b"IEND", b"")
    put("fuzz_png", f"repro_huge_header_ct{ct}_il{il}.png", hdr + body)
rgb = png_encode.encode(rng.integers(0, 256, size=(3, 4, 3)), 2, 8, filters=None)
put("fuzz_png", "bad_crc.png", rgb[:30] + bytes([rgb[30] ^ 1]) + rgb[31:])
put("fuzz_png", "truncated.png", rgb[: len(rgb) - 20])
put("fuzz_png", "rgb_3x2.png", png_encode.encode(rng.integers(0, 256, size=(2, 3, 3)), 2, 8, filters=4))
# flat blocks and vertical stripes under Sub and Paeth: the unfilters' 4-pixel steps
_ys, _xs = np.mgrid[0:9, 0:40]
_blocks = np.array([[10, 200, 30], [10, 200, 31], [250, 0, 30]])[np.where(_ys < 4, (_xs // 2) % 3, (_xs // 9) % 3)]
put("fuzz_png", "rgb_flat_sub.png", png_encode.encode(_blocks, 2, 8, filters=1))
put("fuzz_png", "rgb_flat_paeth.png", png_encode.encode(_blocks, 2, 8, filters=4))

# ---- images for the engine: a few PNGs and JPEGs ----
put("fuzz_image", "rgb.png", rgb)
put("fuzz_image", "palette_adam7.png", dict(png_cases())["ct3_d4_trns_adam7.png"])
for mode in ("RGB", "L", "CMYK"):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(9, 11, 3)).astype(np.uint8), "RGB").convert(mode).save(
        buf, "JPEG", quality=80)
    put("fuzz_image", f"jpeg_{mode}.jpg", buf.getvalue())
buf = io.BytesIO()
Image.fromarray(rng.integers(0, 256, size=(17, 8, 3)).astype(np.uint8)).save(buf, "JPEG", progressive=True)
put("fuzz_image", "jpeg_progressive.jpg", buf.getvalue())


# ---- RLE: h, w, then the compressed counts string ----
def rle_string(cnts):
    out = []
    for i, c in enumerate(cnts):
        x = c - cnts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not ch & 0x10) or (x == -1 and ch & 0x10))
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def mask_runs(m):
    flat = m.T.reshape(-1)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    return runs


for i, (h, w) in enumerate(((4, 5), (1, 1), (9, 3), (30, 40))):
    m = rng.integers(0, 2, size=(h, w))
    put("fuzz_rle", f"mask_{h}x{w}.bin", bytes([h, w]) + rle_string(mask_runs(m)).encode())
put("fuzz_rle", "full_8x8.bin", bytes([8, 8]) + rle_string([0, 64]).encode())
put("fuzz_rle", "large_delta.bin", bytes([200, 200]) + rle_string([39000, 1000, 0]).encode())
# issue 12 item 4: empty masks, with runs and without
put("fuzz_rle", "repro_0x0_no_runs.bin", bytes([0, 0]))
put("fuzz_rle", "repro_0x0_runs.bin", bytes([0, 0]) + rle_string([0, 0, 0]).encode())
put("fuzz_rle", "repro_h0.bin", bytes([0, 200]) + rle_string([0]).encode())
put("fuzz_rle", "repro_w0.bin", bytes([7, 0]) + rle_string([0]).encode())

# ---- polygons: h, w, mode, coordinates (mode 0: int16 / 4, mode 1: doubles) ----
def poly16(h, w, pts):
    return bytes([h, w, 0]) + struct.pack(f"<{len(pts)}h", *[int(v * 4) for v in pts])


put("fuzz_polygon", "triangle.bin", poly16(10, 12, [1, 1, 9.5, 2.25, 4, 8]))
put("fuzz_polygon", "square_outside.bin", poly16(6, 6, [-3, -3, 9, -3, 9, 9, -3, 9]))
put("fuzz_polygon", "star.bin", poly16(20, 20, [10, 0, 13, 7, 20, 7, 14, 12, 17, 20, 10, 15, 3, 20, 6, 12, 0, 7, 7, 7]))
put("fuzz_polygon", "degenerate.bin", poly16(4, 4, [2, 2, 2, 2]))
# issue 12 item 2: three points at 1e8 on a 1x1 image
put("fuzz_polygon", "repro_1e8.bin", bytes([1, 1, 1]) + struct.pack("<6d", 0, 0, 1e8, 0, 1e8, 1e8))
put("fuzz_polygon", "nan_inf.bin", bytes([3, 3, 1]) + struct.pack("<6d", float("nan"), 0, float("inf"), 1, 2, 2))

# ---- COCO results lists (against fuzz_results_json.c's ground truth) ----
seg = {"size": [4, 5], "counts": rle_string(mask_runs(rng.integers(0, 2, size=(4, 5))))}
put("fuzz_results_json", "segm.json", json.dumps([
    {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": seg},
    {"image_id": 7, "category_id": 18, "score": 0.25,
     "segmentation": {"size": [9, 3], "counts": rle_string([5, 3, 19])}, "bbox": [0, 5, 1, 3]}]))
put("fuzz_results_json", "bbox.json", json.dumps([
    {"image_id": 2, "category_id": 2, "score": 0.5, "bbox": [0, 0, 1, 1]},
    {"image_id": 1, "category_id": 1, "score": 1e-3, "bbox": [0.5, 1.25, 3, 2.5]}]))
put("fuzz_results_json", "polygons.json", json.dumps([
    {"image_id": 1, "category_id": 2, "score": 0.7, "segmentation": [[0, 0, 4, 0, 4, 3]]},
    {"image_id": 7, "category_id": 1, "segmentation": {"size": [9, 3], "counts": [0, 27]}}]))
put("fuzz_results_json", "empty.json", "[]")
put("fuzz_results_json", "repro_trailing_comma.json",
    '[{"image_id": 2, "category_id": 2, "score": 0.5, "bbox": [0, 0, 1, 1]},]')
put("fuzz_results_json", "repro_nan_score.json",
    '[{"image_id": 2, "category_id": 2, "score": NaN, "bbox": [0, 0, 1, 1]}]')
put("fuzz_results_json", "repro_polygon_1e8.json",
    '[{"image_id":2,"category_id":1,"score":1,"segmentation":[[0,0,1e8,0,1e8,1e8]]}]')
put("fuzz_results_json", "unknown_image.json", '[{"image_id": 3, "category_id": 1, "score": 1, "bbox": [0,0,1,1]}]')
# the fast reader's shape (data/results_scan.c): a counts string with a backslash ("\\\\"
# in the JSON), compact separators; then the same with a malformed second counts string
esc = rle_string([0, 1, 22, 1, 2, 1])
put("fuzz_results_json", "segm_escaped.json", json.dumps([
    {"image_id": 7, "category_id": 18, "score": 0.125, "segmentation": {"size": [9, 3], "counts": esc},
     "bbox": [0, 0, 3, 9]},
    {"image_id": 1, "category_id": 2, "segmentation": {"size": [4, 5], "counts": "11150L000O01"}, "score": 1e-7}],
    separators=(",", ":")))
put("fuzz_results_json", "repro_bad_counts_late.json", json.dumps([
    {"image_id": 7, "category_id": 18, "score": 0.125, "segmentation": {"size": [9, 3], "counts": esc}},
    {"image_id": 1, "category_id": 2, "segmentation": {"size": [4, 5], "counts": "11150L000O0"}, "score": 0.5}],
    separators=(",", ":")))

# ---- COCO instances ground truth ----
gt = {"images": [{"id": 1, "width": 5, "height": 4, "file_name": "a.jpg"}, {"id": 3, "width": 2, "height": 7}],
      "categories": [{"id": 1, "name": "a", "supercategory": "s"}, {"id": 5, "name": "b"}],
      "annotations": [
          {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 6.5, "bbox": [0, 0, 3, 3],
           "segmentation": [[0, 0, 3, 0, 3, 3], [4, 0, 5, 0, 5, 1]]},
          {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 1, "area": 7, "bbox": [0, 0, 5, 4],
           "segmentation": {"size": [4, 5], "counts": [3, 7, 10]}},
          {"id": 3, "image_id": 3, "category_id": 5, "iscrowd": 0, "area": 3, "bbox": [0, 0, 2, 2],
           "segmentation": {"size": [7, 2], "counts": rle_string([2, 3, 9])}},
          {"id": 4, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 4, "bbox": [0, 0, 2, 2],
           "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]}
put("fuzz_instances_gt", "gt.json", json.dumps(gt))
put("fuzz_instances_gt", "boxes_only.json", json.dumps(
    {"images": gt["images"], "categories": gt["categories"],
     "annotations": [{"id": 9, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 1, 1, 1],
                      "segmentation": [[0, 1, 1, 1]]}]}))
put("fuzz_instances_gt", "empty.json", '{"images": [], "categories": [], "annotations": []}')
# the streamed reader's layouts (data/gt_scan.c) and what it must hand to the tree reader
put("fuzz_instances_gt", "order_reversed.json", json.dumps(
    {"annotations": gt["annotations"], "info": {"a": [[1, {"b": None}]], "s": "x\\\"y"},
     "categories": gt["categories"], "images": gt["images"]}, indent=1).replace("\n", "\r\n"))
put("fuzz_instances_gt", "key_repeated.json", json.dumps(gt)[:-1] + ', "annotations": [], "images": 3}')
put("fuzz_instances_gt", "key_escaped.json", json.dumps(gt).replace('"annotations"', '"annot\\u0061tions"'))
put("fuzz_instances_gt", "syntax_in_annotation.json", json.dumps(gt).replace('"area": 7', '"area": 7.,'))
put("fuzz_instances_gt", "syntax_after_record_error.json",
    json.dumps(dict(gt, info=[1, 2])).replace('"image_id": 3', '"image_id": 33', 1).replace("[1, 2]", "[1, 2,]"))
put("fuzz_instances_gt", "tail_and_bom.json", b"\xef\xbb\xbf" + json.dumps(gt).encode() + b" trailing")
put("fuzz_instances_gt", "deep_annotation.json", json.dumps(dict(gt, annotations=gt["annotations"] + [
    {"id": 8, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1],
     "segmentation": [[0, 0, 1, 0, 1, 1]], "x": "[" * 996 + "]" * 996}])).replace('"[', "[").replace(']"', "]"))
put("fuzz_instances_gt", "deep_annotation_over.json", json.dumps(dict(gt, annotations=gt["annotations"] + [
    {"id": 8, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1],
     "segmentation": [[0, 0, 1, 0, 1, 1]], "x": "[" * 998 + "]" * 998}])).replace('"[', "[").replace(']"', "]"))

# ---- COCO panoptic JSON ----
pan = {"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3},
                  {"id": "frankfurt_000000", "file_name": "b.jpg", "width": 2, "height": 2}],
       "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
           {"id": 3, "category_id": 1, "iscrowd": 0, "area": 5, "bbox": [0, 0, 2, 2]},
           {"id": 256, "category_id": 184, "iscrowd": 1, "area": 7, "bbox": [0, 0, 4, 3]}]},
           {"image_id": "frankfurt_000000", "file_name": "b.png", "segments_info": []}],
       "categories": [{"id": 1, "name": "person", "supercategory": "person", "isthing": 1, "color": [220, 20, 60]},
                      {"id": 184, "name": "tree", "supercategory": "plant", "isthing": 0}]}
put("fuzz_panoptic_json", "panoptic.json", json.dumps(pan))
put("fuzz_panoptic_json", "categories_list.json", json.dumps(pan["categories"]))
put("fuzz_panoptic_json", "no_annotations.json", json.dumps({"images": pan["images"], "categories": pan["categories"]}))

# ---- .npy and .npy.zst ----
arrays = {"f32_2d": np.arange(12, dtype="<f4").reshape(3, 4), "f16_4d": np.ones((1, 2, 2, 3), "<f2"),
          "u8_1d": np.arange(7, dtype="u1"), "u16_3d": np.arange(24, dtype="<u2").reshape(2, 3, 4),
          "i32_scalar": np.array(-5, "<i4"), "f32_empty": np.zeros((0, 5), "<f4")}
for name, a in arrays.items():
    buf = io.BytesIO()
    np.save(buf, a)
    put("fuzz_npy", name + ".npy", buf.getvalue())
    z = subprocess.run(["zstd", "-q", "-c", "--check"], input=buf.getvalue(), stdout=subprocess.PIPE, check=True)
    put("fuzz_npy", name + ".npy.zst", z.stdout)


# ---- safetensors ----
def safetensors(tensors, meta=None, raw_header=None):
    header, data = {}, b""
    for name, a in tensors.items():
        dt = {"float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "uint8": "U8"}[str(a.dtype)]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    if meta is not None:
        header["__metadata__"] = meta
    h = raw_header.encode() if raw_header else json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("fuzz_safetensors", "small.safetensors", safetensors(
    {"conv.weight": np.arange(24, dtype="f4").reshape(2, 3, 2, 2), "bn.bias": np.ones(3, "f2"),
     "x.f64": np.zeros((2, 1), "f8"), "n": np.array([3], "i8")}, meta={"format": "pt"}))
put("fuzz_safetensors", "empty.safetensors", safetensors({}))
put("fuzz_safetensors", "repro_two_metadata.safetensors", safetensors(
    {}, raw_header='{"__metadata__": {"a": "1", "b": "2"}, "__metadata__": {"c": "3"}, '
                   '"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}') + b"\x07")

# ---- configuration files, against fuzz_config_files.h's dataset (things 1, 3; stuff 184) ----
table = {"format": "avps class table 1", "metric": "mask_ap", "min_instances": 10, "ends": ["ups", "htc"],
         "overall_best": "htc", "classes": [
             {"category_id": 1, "end": "htc", "fallback": False, "n_heldout": 52,
              "score": {"ups": 0.4127, "htc": 0.4411}},
             {"category_id": 3, "end": "ups", "fallback": True, "n_heldout": 3, "score": {"ups": None, "htc": 0.1}}]}
put("fuzz_class_table", "table.json", json.dumps(table))
put("fuzz_class_table", "pq_th.json", json.dumps(dict(table, metric="pq_th", ends=["htc", "ups"])))
put("fuzz_sim_profile", "htc_override.json", '{"base": "htc", "is_recall": 0.85}')
put("fuzz_sim_profile", "fields.json", '{"is_calibration": 0.5, "is_soft": 1, "class_spread": 0.2, "shared": 0.3}')
with open(os.path.join(HERE, "..", "..", "configs", "demo.json"), "rb") as f:
    put("fuzz_run_config", "demo.json", f.read())
put("fuzz_run_config", "end_spec.txt", "e_ups=ensemble:r50=sim:r50*0.4,r101=sim:r101:7*1.2")
put("fuzz_run_config", "end_spec_replay.txt", "htc=replay:store/htc")
put("fuzz_run_journal", "two_items.bin", b"0 1\n1 2\n\0" + bytes(range(64)))
put("fuzz_run_journal", "cut_line.bin", b"1 2\n0 \0")
head = {"name": "r50", "ss_kind": "probs", "categories": [1, 3, 184, 7], "category_map": {"7": 184}}
image = {"width": 4, "height": 3, "ss": {"scale": [0.5, 0.5], "offset": [0, 0], "valid": [2, 2]},
         "instances": [{"category_id": 1, "score": 0.9, "segmentation": {"size": [3, 4], "counts": "0c0"}},
                       {"category_id": 3, "score": 0.4, "box": [0, 0, 2, 2], "soft": 0, "paste": "detectron2"}]}
put("fuzz_store_head", "store.bin", json.dumps(head).encode() + b"\0" + json.dumps(image).encode())
put("fuzz_store_head", "labels.bin", b'{"ss_kind": "labels", "categories": [184]}\0{}')
print("seeds written under", os.path.join(HERE, "corpus"))
