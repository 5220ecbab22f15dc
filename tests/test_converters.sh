#!/usr/bin/env bash
# test_converters.sh: the Python converters of scripts/ (issue 15 item 5) on files built
# as detectron2 and mmdetection 3.x write them (the same structures: lists of dicts of
# tensors and RLE, saved with torch.save / pickle; neither package needed): converted to a
# prediction store, exported back by avps and compared with the import of the same
# outputs in COCO's formats. The pure-numpy writer (scripts/avps_store.py) is checked
# against the store avps itself writes.
# Usage: tests/test_converters.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/avps_conv_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
PY=/usr/bin/python3
if ! $PY -c 'import numpy, PIL, torch' 2>/dev/null; then
    echo "SKIP: test_converters needs numpy, Pillow and torch in /usr/bin/python3"
    echo "0 passed, 1 failed"
    exit 1
fi
cd "$T" || exit 1
export PYTHONPATH=$ROOT/scripts

"$AVPS" synth --out w --images 5 --heldout 1 --size 80x56 --seed 8 --pred >/dev/null || ko "synth"
GT=w/val.json
"$AVPS" export --gt-json $GT --head r50 --backend sim --profile r50 --results r.json --semantic-dir sem \
    --store-out sim >/dev/null || ko "export r50"
"$AVPS" import --gt-json $GT --results r.json --semantic-dir sem --out base --head net >/dev/null || ko "import"
back() { # STORE PREFIX [ARGS]
    local s=$1 p=$2; shift 2
    "$AVPS" export --gt-json $GT --head net --backend replay --store "$s" --results "$p.json" "$@" >/dev/null 2>"$p.err"
}
back base base --semantic-dir base.sem || ko "base export"
"$AVPS" import --gt-json $GT --panoptic-json w/pred.json --out pan --head net >/dev/null || ko "panoptic import"
back pan pan --semantic-dir pan.sem || ko "panoptic export"

# ---- detectron2: instances_predictions.pth (COCOEvaluator's _predictions), contiguous ids
$PY - <<'PY' || ko "writing instances_predictions.pth"
import json, torch
gt = json.load(open("w/val.json"))
things = [c["id"] for c in gt["categories"] if c["isthing"]]
preds = {im["id"]: {"image_id": im["id"], "instances": []} for im in gt["images"]}
for x in json.load(open("r.json")):
    preds[x["image_id"]]["instances"].append({"image_id": x["image_id"], "category_id": things.index(x["category_id"]),
        "bbox": x["bbox"], "score": x["score"], "segmentation": x["segmentation"]})
torch.save(list(preds.values()), "instances_predictions.pth")
bad = list(preds.values()); bad[0]["instances"][0]["category_id"] = 95
torch.save(bad, "bad.pth")
PY
if $PY "$ROOT/scripts/detectron2-to-store" --pth instances_predictions.pth --gt-json $GT --out d2 --head net 2>err; then
    grep -q '"category_map": "coco80"' d2/head.json && ok || ko "detectron2: head.json lacks the coco80 map"
    back d2 d2 && cmp -s base.json d2.json && ok || ko "detectron2: the results differ from the COCO JSON import's $(cat d2.err)"
else
    ko "detectron2-to-store: $(cat err)"
fi
$PY "$ROOT/scripts/detectron2-to-store" --pth bad.pth --gt-json $GT --out d2bad --head net 2>/dev/null &&
    { back d2bad d2bad && ko "detectron2: index 95 outside coco80 accepted"; grep -q "category index 95 is outside the category map coco80" d2bad.err &&
      grep -q "instance 0" d2bad.err && ok || ko "detectron2: $(cat d2bad.err)"; } || ko "detectron2-to-store of bad.pth"

# ---- mmdetection 3.x: results.pkl with pred_instances (RLE bytes or bool masks) and
# pred_sem_seg, or pred_panoptic_seg alone
$PY - <<'PY' || ko "writing results.pkl"
import json, os, pickle, numpy as np, torch
from PIL import Image
gt = json.load(open("w/val.json"))
ids = [c["id"] for c in gt["categories"]]          # things then stuff: mmdet's panoptic order
res = json.load(open("r.json"))
pan = json.load(open("w/pred.json"))
def decode(seg):  # COCO compressed RLE -> mask, as the format defines it (column-major)
    s, h, w = seg["counts"], seg["size"][0], seg["size"][1]
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, 1
        while more:
            c = ord(s[p]) - 48; x |= (c & 0x1f) << 5 * k; more = c & 0x20; p += 1; k += 1
            if not more and (c & 0x10): x |= -1 << 5 * k
        if len(cnts) > 2: x += cnts[-2]
        cnts.append(x)
    m = np.zeros(h * w, bool); at = 0
    for j, c in enumerate(cnts):
        if j % 2: m[at:at + c] = True
        at += c
    return m.reshape(w, h).T
out_rle, out_bool, out_pan = [], [], []
for im in gt["images"]:
    mine = [x for x in res if x["image_id"] == im["id"]]
    lab = np.asarray(Image.open("sem/" + im["file_name"].replace(".jpg", ".png"))).astype(np.int64)
    sem = torch.from_numpy(np.where(lab == 0, 255, np.searchsorted(ids, lab)))[None]
    b = torch.tensor([[x["bbox"][0], x["bbox"][1], x["bbox"][0] + x["bbox"][2], x["bbox"][1] + x["bbox"][3]]
                      for x in mine]).reshape(-1, 4)
    inst = {"labels": torch.tensor([ids.index(x["category_id"]) for x in mine]),
            "scores": torch.tensor([x["score"] for x in mine], dtype=torch.float64), "bboxes": b}
    base = {"img_id": im["id"], "img_path": "data/coco/val2017/" + im["file_name"],
            "ori_shape": (im["height"], im["width"]), "pred_sem_seg": {"sem_seg": sem}}
    out_rle.append(dict(base, pred_instances=dict(inst, masks=[{"size": x["segmentation"]["size"],
        "counts": x["segmentation"]["counts"].encode()} for x in mine])))
    masks = torch.from_numpy(np.stack([decode(x["segmentation"]) for x in mine])) if mine else \
        torch.zeros((0, im["height"], im["width"]), dtype=torch.bool)
    out_bool.append(dict(base, pred_instances=dict(inst, masks=masks)))
    a = [a for a in pan["annotations"] if a["image_id"] == im["id"]][0]
    rgb = np.asarray(Image.open("w/pred/" + a["file_name"]).convert("RGB")).astype(np.int64)
    seg = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    p = np.full(seg.shape, len(ids), np.int64)      # VOID = the number of classes
    for k, s in enumerate(a["segments_info"]):
        p[seg == s["id"]] = ids.index(s["category_id"]) + 1000 * (k + 1)
    out_pan.append({"img_id": im["id"], "ori_shape": (im["height"], im["width"]),
                    "pred_panoptic_seg": {"sem_seg": torch.from_numpy(p)[None]}})
for name, v in (("rle", out_rle), ("bool", out_bool), ("pan", out_pan)):
    pickle.dump(v, open(f"results_{name}.pkl", "wb"))
PY
for v in rle bool; do
    if $PY "$ROOT/scripts/mmdet-to-store" --pkl results_$v.pkl --gt-json $GT --out mm_$v --head net 2>err; then
        back mm_$v mm_$v --semantic-dir mm_$v.sem && cmp -s base.json mm_$v.json && diff -r base.sem mm_$v.sem >/dev/null &&
            ok || ko "mmdet ($v masks): the export differs from the COCO import's $(cat mm_$v.err)"
    else
        ko "mmdet-to-store ($v): $(cat err)"
    fi
done
# pred_sem_seg as C x H x W logits (a semantic head's output): stored as logits, and the
# exported argmax is numpy's over the fp16-rounded logits
$PY - <<'PY' || ko "writing results_logits.pkl"
import json, os, pickle, numpy as np, torch
from PIL import Image
gt = json.load(open("w/val.json"))
ids = np.array([c["id"] for c in gt["categories"]])
rng = np.random.default_rng(9)
r = pickle.load(open("results_rle.pkl", "rb"))
os.makedirs("lg.expect", exist_ok=True)
for x, im in zip(r, gt["images"]):
    lg = (rng.standard_normal((len(ids), im["height"], im["width"])) * 2).astype(np.float32)
    x["pred_sem_seg"] = {"sem_seg": torch.from_numpy(lg)}
    best = np.argmax(lg.astype(np.float16), 0)
    Image.fromarray(ids[best].astype(np.uint8)).save("lg.expect/" + im["file_name"].replace(".jpg", ".png"))
pickle.dump(r, open("results_logits.pkl", "wb"))
PY
if $PY "$ROOT/scripts/mmdet-to-store" --pkl results_logits.pkl --gt-json $GT --out mm_lg --head net 2>err; then
    grep -q '"ss_kind": "logits"' mm_lg/head.json && back mm_lg mm_lg --semantic-dir mm_lg.sem &&
        cmp -s base.json mm_lg.json && $PY -c "
import os, sys, numpy as np
from PIL import Image
for f in os.listdir('lg.expect'):
    assert (np.asarray(Image.open('lg.expect/' + f)) == np.asarray(Image.open('mm_lg.sem/' + f))).all(), f" &&
        ok || ko "mmdet (logits): the store or its argmax is not the logits' $(cat mm_lg.err)"
else
    ko "mmdet-to-store (logits): $(cat err)"
fi
if $PY "$ROOT/scripts/mmdet-to-store" --pkl results_pan.pkl --gt-json $GT --out mm_pan --head net 2>err; then
    back mm_pan mm_pan --semantic-dir mm_pan.sem && cmp -s pan.json mm_pan.json && diff -r pan.sem mm_pan.sem >/dev/null &&
        ok || ko "mmdet (panoptic): the export differs from the panoptic JSON import's $(cat mm_pan.err)"
else
    ko "mmdet-to-store (panoptic): $(cat err)"
fi

# ---- the pure-numpy writer: the bytes avps writes, less zstd; probabilities at a stride
$PY - <<'PY' || ko "avps_store.py"
import json, os, subprocess, numpy as np
from avps_store import StoreWriter, rle_counts
head = json.load(open("sim/head.json"))
w = StoreWriter("np", "net", ss_kind=head["ss_kind"], categories=head["categories"])
for f in sorted(os.listdir("sim")):
    if not f.endswith(".json") or f == "head.json":
        continue
    iid = f[:-5]
    doc = json.load(open("sim/" + f))
    ss = np.load(__import__("io").BytesIO(subprocess.run(["zstd", "-d", "-c", f"sim/{iid}.ss.npy.zst"],
                 capture_output=True, check=True).stdout))
    soft = None
    if os.path.exists(f"sim/{iid}.masks.npy.zst"):
        soft = np.load(__import__("io").BytesIO(subprocess.run(["zstd", "-d", "-c", f"sim/{iid}.masks.npy.zst"],
                       capture_output=True, check=True).stdout))
    w.put(iid, doc["width"], doc["height"], ss=ss, geometry=doc["ss"], instances=doc["instances"], soft_masks=soft)
    # np.save's bytes are those avps compresses
    raw = subprocess.run(["zstd", "-d", "-c", f"sim/{iid}.ss.npy.zst"], capture_output=True, check=True).stdout
    assert open(f"np/{iid}.ss.npy", "rb").read() == raw, iid
w.finish()
m = np.zeros((3, 4), bool); m[0, 0] = m[2, 1:3] = True
assert rle_counts(m) == [0, 1, 4, 1, 2, 1, 3], rle_counts(m)
assert rle_counts(~m) == [1, 4, 1, 2, 1, 3], rle_counts(~m)
PY
"$AVPS" export --gt-json $GT --head net --backend replay --store sim --results sim.json --semantic-dir sim.sem >/dev/null &&
    back np np --semantic-dir np.sem && cmp -s sim.json np.json && diff -r sim.sem np.sem >/dev/null && ok ||
    ko "numpy writer: the export differs from the avps store's $(cat np.err)"
# masks as bools, uncompressed RLE: the same results as the compressed ones
$PY - <<'PY' || ko "avps_store.py with bool masks"
import json, numpy as np
from avps_store import StoreWriter
from PIL import Image
gt = json.load(open("w/val.json"))
ids = [c["id"] for c in gt["categories"]]
w = StoreWriter("npb", "net", ss_kind="labels", categories=ids)
import pickle
r = {x["img_id"]: x for x in pickle.load(open("results_bool.pkl", "rb"))}
for im in gt["images"]:
    p = r[im["id"]]["pred_instances"]
    lab = np.asarray(Image.open("sem/" + im["file_name"].replace(".jpg", ".png"))).astype(np.int64)
    w.put(im["id"], im["width"], im["height"], ss=np.where(lab == 0, 65535, np.searchsorted(ids, lab)),
          instances=[{"category_id": ids[int(c)], "score": float(s), "mask": m.numpy()}
                     for c, s, m in zip(p["labels"], p["scores"], p["masks"])])
w.finish()
PY
back npb npb --semantic-dir npb.sem && cmp -s base.json npb.json && diff -r base.sem npb.sem >/dev/null && ok ||
    ko "numpy writer (bool masks, labels): the export differs from the COCO import's $(cat npb.err)"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
