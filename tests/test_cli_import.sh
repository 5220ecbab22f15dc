#!/usr/bin/env bash
# test_cli_import.sh: `avps import` of network outputs as users have them (issue 15 items
# 1-4): each form is written as its tool writes it, imported, exported back (or fused,
# evaluated) and compared with the answer the ordinary 8-bit PNG + COCO results import
# gives, or with numpy's/torch's own computation. Bad input is refused with the file,
# image and item named, and nothing is left on disk.
# Usage: tests/test_cli_import.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
T=$(mktemp -d /tmp/avps_import_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
PY=/usr/bin/python3
if ! $PY -c 'import numpy, PIL, torch' 2>/dev/null; then
    echo "SKIP: test_cli_import needs numpy, Pillow and torch in /usr/bin/python3"
    echo "0 passed, 1 failed"
    exit 1
fi
cd "$T" || exit 1

"$AVPS" synth --out w --images 6 --heldout 4 --size 96x64 --seed 5 --pred >/dev/null || ko "synth"
GT=w/val.json
"$AVPS" export --gt-json $GT --head r50 --backend sim --profile r50 --results r.json --semantic-dir sem \
    --semantic-json sj.json >/dev/null || ko "export r50"
"$AVPS" import --gt-json $GT --results r.json --semantic-dir sem --out st_base --head net >/dev/null || ko "base import"
back() { # STORE PREFIX: the store exported as results JSON and semantic PNGs
    "$AVPS" export --gt-json $GT --head net --backend replay --store "$1" --results "$2.json" --semantic-dir "$2.sem" \
        >/dev/null 2>"$2.err"
}
back st_base base || ko "base export"
same_as_base() { # WHAT STORE [results|sem|both]
    local what=$1 store=st_$2 side=${3:-both}
    rm -rf "$what.json" "$what.sem"
    if ! back "$store" "$what"; then ko "$what: export: $(cat "$what.err")"; return; fi
    if [ "$side" != sem ] && ! cmp -s base.json "$what.json"; then ko "$what: results differ from the base import's"; return; fi
    if [ "$side" != results ] && ! diff -r base.sem "$what.sem" >/dev/null; then ko "$what: semantic PNGs differ"; return; fi
    ok
}
imp() { # NAME ARGS...: import into st_NAME; 1 with the message in st_NAME.err when refused
    local out=st_$1; shift
    rm -rf "$out"
    "$AVPS" import --gt-json $GT --out "$out" --head net "$@" >/dev/null 2>"$out.err"
}
refused() { # WHAT NAME PATTERN ARGS...: refused with PATTERN, nothing left on disk
    local what=$1 name=$2 out=st_$2 pattern=$3; shift 3
    if imp "$name" "$@"; then ko "$what: exit 0"; return; fi
    if ! grep -q -- "$pattern" "$out.err"; then ko "$what: message lacks '$pattern': $(cat "$out.err")"; return; fi
    if [ -e "$out" ] || ls -d "$out".* 2>/dev/null | grep -v '\.err$' | grep -q .; then
        ko "$what: left $(ls -d "$out"*) on disk"; return
    fi
    ok
}
sem1=$(ls sem | head -1)
same_pixels() { # DIR_A DIR_B: the same PNG names, the same pixel values
    $PY -c "
import os, sys, numpy as np
from PIL import Image
a, b = sys.argv[1:]
assert sorted(os.listdir(a)) == sorted(os.listdir(b))
for f in os.listdir(a):
    x, y = np.asarray(Image.open(os.path.join(a, f))), np.asarray(Image.open(os.path.join(b, f)))
    assert x.shape == y.shape and (x == y).all(), (f, int((x != y).sum()))" "$1" "$2"
}

# ---- label-map PNGs: palette indexes (with tRNS), 16-bit values, contiguous indexes
$PY - <<'PY' || ko "writing label maps"
import json, os, numpy as np
from PIL import Image
cats = json.load(open("w/val.json"))["categories"]
ids = [c["id"] for c in cats]                        # COCO's 133 in id order (coco133)
things = [c["id"] for c in cats if c["isthing"]]     # coco80
rng = np.random.default_rng(3)
for d in ("pal", "g16", "idx"):
    os.makedirs(d, exist_ok=True)
json.dump({str(1000 + k): i for k, i in enumerate(ids)}, open("map1000.json", "w"))
json.dump([9999] * len(ids), open("bad133.json", "w"))
for f in sorted(os.listdir("sem")):
    a = np.asarray(Image.open("sem/" + f))
    p = Image.fromarray(a, mode="P")                 # values = category ids, as indexes
    p.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
    p.info["transparency"] = 0
    p.save("pal/" + f, transparency=0)
    v = np.where(a == 0, 65535, 1000 + np.searchsorted(ids, a)).astype(np.uint16)
    Image.fromarray(v, mode="I;16").save("g16/" + f)  # what cv2.imwrite writes for uint16
    assert open("g16/" + f, "rb").read()[24:26] == bytes([16, 0])
    Image.fromarray(np.where(a == 0, 255, np.searchsorted(ids, a)).astype(np.uint8)).save("idx/" + f)
r = json.load(open("r.json"))
for x in r:
    x["category_id"] = things.index(x["category_id"])
json.dump(r, open("r80.json", "w"))
PY
imp pal --results r.json --semantic-dir pal && same_as_base pal pal || ko "palette PNGs: $(cat st_pal.err)"
imp g16 --results r.json --semantic-dir g16 --semantic-category-map map1000.json --ignore-label 65535 &&
    same_as_base g16 g16 || ko "16-bit PNGs with a map: $(cat st_g16.err)"
imp idx --results r80.json --results-category-map coco80 --semantic-dir idx --semantic-category-map coco133 &&
    same_as_base idx idx || ko "contiguous indexes (coco80, coco133): $(cat st_idx.err)"
imp idx2 --results r80.json --semantic-dir idx --category-map '{"0": 1}' --results-category-map mmdet-coco \
    --semantic-category-map detectron2-coco-panoptic && same_as_base idx2 idx2 || ko "named presets: $(cat st_idx2.err)"

# every layout a label map comes in: one map of class indexes 0..14 (15 = no class) as
# 8-bit grey, 16-bit grey, 4- and 8-bit palettes, grey+alpha, RGB, RGBA; 0/1 as 1-bit grey
$PY - <<'PY' || ko "writing label maps of every layout"
import os, numpy as np
from PIL import Image
rng = np.random.default_rng(5)
names = sorted(os.listdir("sem"))
for d in ("L", "I16", "P4", "P8", "LA", "RGB", "RGBA", "B1", "B8"):
    os.makedirs("lay_" + d, exist_ok=True)
for f in names:
    v = rng.integers(0, 16, (64, 96)).astype(np.uint8)
    Image.fromarray(v).save("lay_L/" + f)
    Image.fromarray(v.astype(np.uint16), mode="I;16").save("lay_I16/" + f)
    p = Image.fromarray(v, mode="P"); p.putpalette(list(rng.integers(0, 256, 48, dtype=np.uint8)))
    p.save("lay_P4/" + f, bits=4)
    p.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8))); p.save("lay_P8/" + f)
    Image.fromarray(np.stack([v, rng.integers(0, 256, v.shape, dtype=np.uint8)], -1), mode="LA").save("lay_LA/" + f)
    Image.fromarray(np.stack([v] * 3, -1)).save("lay_RGB/" + f)
    Image.fromarray(np.stack([v] * 3 + [np.full_like(v, 7)], -1)).save("lay_RGBA/" + f)
    b = v > 7
    Image.fromarray(b).convert("1").save("lay_B1/" + f)
    Image.fromarray(b.astype(np.uint8)).save("lay_B8/" + f)
assert open("lay_P4/" + names[0], "rb").read()[24:26] == bytes([4, 3])
PY
for d in L I16 P4 P8 LA RGB RGBA; do
    imp lay_$d --semantic-dir lay_$d --semantic-category-map coco133 --ignore-label 15 || ko "layout $d: $(cat st_lay_$d.err)"
done
for d in I16 P4 P8 LA RGB RGBA; do
    diff -r st_lay_L st_lay_$d >/dev/null && ok || ko "layout $d: another store than 8-bit grey's"
done
imp lay_B1 --semantic-dir lay_B1 --semantic-category-map coco133 --ignore-label none &&
    imp lay_B8 --semantic-dir lay_B8 --semantic-category-map coco133 --ignore-label none &&
    diff -r st_lay_B1 st_lay_B8 >/dev/null && ok || ko "1-bit grey: not its 0/1 values $(cat st_lay_B1.err)"
cp -r lay_RGB lay_bad && $PY -c "
import sys, numpy as np
from PIL import Image
a = np.array(Image.open(sys.argv[1])); a[3, 2, 1] += 1; Image.fromarray(a).save(sys.argv[1])" "lay_bad/$sem1"
refused "an RGB pixel that is not grey" o0 "lay_bad/$sem1: pixel (2, 3) is not grey" --semantic-dir lay_bad \
    --semantic-category-map coco133 --ignore-label 15

# under MPI: the same store from 3 ranks, and a failure on any rank leaves nothing
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf st_np3 && $MPIRUN 3 "$AVPS" import --gt-json $GT --results r.json --semantic-dir sem --out st_np3 --head net \
    --threads 2 >/dev/null 2>&1 && diff -r st_base st_np3 >/dev/null && ok || ko "mpirun -np 3 import: another store"
rm -rf st_np3b && ! $MPIRUN 3 "$AVPS" import --gt-json $GT --semantic-dir lay_bad --semantic-category-map coco133 \
    --ignore-label 15 --out st_np3b --head net >/dev/null 2>err && grep -q "pixel (2, 3) is not grey" err &&
    [ ! -e st_np3b ] && [ ! -e st_np3b.import.tmp ] && ok || ko "mpirun -np 3 failed import: $(cat err | head -3)"

# indexes outside the map, categories the dataset lacks: refused, naming them
cp -r idx idxbad && $PY -c "
import sys, numpy as np
from PIL import Image
a = np.array(Image.open(sys.argv[1])); a[5, 7] = 140; Image.fromarray(a).save(sys.argv[1])" "idxbad/$sem1"
refused "pixel outside the map" o1 "idxbad/$sem1: pixel (7, 5) holds index 140, outside the category map coco133" \
    --semantic-dir idxbad --semantic-category-map coco133
refused "result outside the map" o2 "result 0: category index .* is outside the category map" \
    --results r.json --results-category-map '[1, 2, 3]'
refused "result outside the map (preset)" o2b "outside the category map coco80" --results r.json --category-map coco80
refused "pixel not a category" o3 "pixel (0, 0) holds index .*, which the category map bad133.json makes category 9999" \
    --semantic-dir idx --semantic-category-map bad133.json
refused "bad map" o4 "not a preset" --results r.json --category-map coco81
refused "map to a non-id" o5 "index 0 must map to a category id" --results r.json --category-map '{"0": "cat"}'
# a failed import over an existing store leaves it as it was
cp -r st_base st_o6 && ! "$AVPS" import --gt-json $GT --out st_o6 --head net --semantic-dir idxbad \
    --semantic-category-map coco133 2>/dev/null && diff -r st_base st_o6 >/dev/null &&
    ! ls -d st_o6.* 2>/dev/null | grep -q . && ok || ko "a failed import changed the store it was to replace"
"$AVPS" import --gt-json $GT --out st_o6 --head net --results r.json --semantic-dir sem >/dev/null &&
    diff -r st_base st_o6 >/dev/null && ! ls -d st_o6.* 2>/dev/null | grep -q . && ok || ko "import over an existing store"

# a store folder given as a link: the link stays, its target gets the store; a missing
# PNG is refused before anything is written (issue 12 item 10)
mkdir -p real && ln -s real st_link &&
    "$AVPS" import --gt-json $GT --out st_link --head net --results r.json --semantic-dir sem >/dev/null 2>err &&
    [ -L st_link ] && diff -r st_base real >/dev/null && ok || ko "import through a link: $(cat err)"
cp -r sem semmiss && rm "semmiss/$sem1"
refused "a missing semantic PNG" o15 "semmiss/$sem1: cannot open the PNG" --results r.json --semantic-dir semmiss

# ---- NumPy arrays: probabilities stay probabilities; logits at a stride; label maps
$PY - <<'PY' || ko "writing arrays"
import json, os, numpy as np, torch
from PIL import Image
cats = json.load(open("w/val.json"))["categories"]
ids = np.array([c["id"] for c in cats])
rng = np.random.default_rng(4)
for d in ("p32", "p16", "lg", "lab"):
    os.makedirs(d, exist_ok=True)
for f in sorted(os.listdir("sem")):
    stem = f[:-4]
    a = np.asarray(Image.open("sem/" + f))
    p = rng.random((len(ids),) + a.shape).astype(np.float32) * 0.2
    ch = np.searchsorted(ids, a)
    yy, xx = np.nonzero(a)
    p[ch[yy, xx], yy, xx] += 3
    p /= p.sum(0, keepdims=True)
    np.save(f"p32/{stem}.npy", p.astype(np.float16).astype(np.float32))  # fp16 values: same store
    np.save(f"p16/{stem}.npy", p.astype(np.float16))
    exp = ids[np.argmax(p.astype(np.float16).astype(np.float32), 0)].astype(np.uint8)
    os.makedirs("p.expect", exist_ok=True)
    Image.fromarray(exp).save("p.expect/" + f)
    # logits at stride 4 (96x64 -> 24x16); the reference: softmax at the grid, then
    # bilinear as torch's interpolate(align_corners=False), then the argmax
    lg = (rng.standard_normal((len(ids), 16, 24)) * 3).astype(np.float16)
    np.save(f"lg/{stem}.npy", lg)
    t = torch.from_numpy(lg.astype(np.float32)).softmax(0)[None]
    up = torch.nn.functional.interpolate(t, size=(64, 96), mode="bilinear", align_corners=False)[0]
    os.makedirs("lg.expect", exist_ok=True)
    Image.fromarray(ids[up.argmax(0).numpy()].astype(np.uint8)).save("lg.expect/" + f)
    np.save(f"lab/{stem}.npy", np.where(a == 0, 255, ch).astype(np.uint8)[None])  # mmseg: 1 x H x W
PY
for f in p16/*.npy; do zstd -q -19 "$f" -o "$f.zst" && rm "$f"; done
imp p32 --semantic-dir p32 --semantic-format npy --semantic-kind probs || ko "f32 probabilities: $(cat st_p32.err)"
imp p16 --semantic-dir p16 --semantic-format npy --semantic-kind probs || ko "f16 .npy.zst probabilities: $(cat st_p16.err)"
grep -q '"ss_kind": "probs"' st_p32/head.json && ok || ko "probabilities stored as $(head -c 60 st_p32/head.json)"
diff -r st_p32 st_p16 >/dev/null && ok || ko "f32 .npy and f16 .npy.zst of the same values: different stores"
stem1=${sem1%.png}
id1=$((10#$stem1)) # the synthetic world's file names are the ids, as COCO's
zstd -q -d -c "st_p32/$id1.ss.npy.zst" >stored.npy
# the stored scores are the input's, bit for bit
$PY -c "
import sys, numpy as np
a = np.load('stored.npy'); b = np.load(sys.argv[1]).astype(np.float16)
sys.exit(0 if a.dtype == np.float16 and a.shape == b.shape and (a.view(np.uint16) == b.view(np.uint16)).all() else 1)" \
    "p32/$stem1.npy" && ok || ko "stored probabilities are not the input's"
"$AVPS" export --gt-json $GT --head net --backend replay --store st_p32 --semantic-dir p32.sem >/dev/null &&
    same_pixels p.expect p32.sem && ok || ko "probabilities: the exported argmax is not numpy's"
imp lg --semantic-dir lg --semantic-format npy --semantic-kind logits --ss-stride 4 || ko "logits: $(cat st_lg.err)"
grep -q '"scale": \[0.25, 0.25\], "offset": \[0, 0\], "valid": \[24, 16\]' "st_lg/$id1.json" && ok ||
    ko "stride 4: geometry $(head -2 "st_lg/$id1.json" | tail -1)"
"$AVPS" export --gt-json $GT --head net --backend replay --store st_lg --semantic-dir lg.sem >/dev/null &&
    same_pixels lg.expect lg.sem && ok || ko "logits at stride 4: the argmax is not torch's"
imp lab --results r.json --semantic-dir lab --semantic-format npy --semantic-category-map coco133 &&
    same_as_base lab lab || ko "1 x H x W label arrays: $(cat st_lab.err)"
# the simulated head's own logits, dumped as .npy.zst arrays (as a network's test script
# would) and imported at their stride: the same SS bytes and the same export as the head
"$AVPS" export --gt-json $GT --head r50 --backend sim --profile r50 --store-out simst >/dev/null || ko "store-out"
mkdir -p simlg && for f in simst/*.ss.npy.zst; do
    i=$(basename "$f" .ss.npy.zst); cp "$f" "simlg/$(printf %012d "$i").npy.zst"
done
grep -q '"scale": \[0.25, 0.25\], "offset": \[0, 0\]' "simst/$id1.json" || ko "the sim head is not at stride 4 here"
imp simlg --results r.json --semantic-dir simlg --semantic-format npy --semantic-kind logits --ss-stride 4 &&
    cmp -s "simst/$id1.ss.npy.zst" "st_simlg/$id1.ss.npy.zst" && same_as_base simlg simlg ||
    ko "the head's logits at stride 4: $(cat st_simlg.err)"
refused "float array without a kind" o7 "$stem1.npy: a float array: say whether" --semantic-dir p32 --semantic-format npy
refused "probabilities that are logits" o8 "sum to" --semantic-dir lg --semantic-format npy --semantic-kind probs --ss-stride 4
refused "a grid too small for its stride" o9 "cannot cover the 96x64 image" --semantic-dir lg --semantic-format npy \
    --semantic-kind logits --ss-stride 2
refused "a missing array" o10 "no semantic array" --semantic-dir sem --semantic-format npy --semantic-kind probs

# ---- detectron2's sem_seg_predictions.json: file_name of the input image, RLE per category
$PY - <<'PY' || ko "writing sem_seg_predictions.json"
import json
imgs = {i["id"]: i["file_name"] for i in json.load(open("w/val.json"))["images"]}
ids = [c["id"] for c in json.load(open("w/val.json"))["categories"]]
e = json.load(open("sj.json"))
d2 = [{"file_name": "datasets/coco/val2017/" + imgs[x["image_id"]], "category_id": x["category_id"],
       "segmentation": x["segmentation"]} for x in e]
json.dump(d2, open("d2.json", "w"))
json.dump([dict(x, category_id=ids.index(x["category_id"])) for x in d2], open("d2c.json", "w"))
json.dump(d2 + [dict(d2[0], file_name="x/nothere.jpg")], open("d2bad.json", "w"))
json.dump(d2 + [d2[0]], open("d2dup.json", "w"))
PY
imp sj --results r.json --semantic-json sj.json && same_as_base sj sj || ko "semantic JSON by image_id: $(cat st_sj.err)"
imp d2 --results r.json --semantic-json d2.json && same_as_base d2 d2 || ko "sem_seg_predictions.json: $(cat st_d2.err)"
imp d2c --results r.json --semantic-json d2c.json --semantic-category-map coco133 && same_as_base d2c d2c ||
    ko "sem_seg_predictions.json with contiguous ids: $(cat st_d2c.err)"
refused "an unknown image" o11 "file x/nothere.jpg: d2bad.json: entry .*: its image is not in the dataset" --semantic-json d2bad.json
refused "two entries on one pixel" o12 "d2dup.json: image .*: entry .*: pixel .* is already taken" --semantic-json d2dup.json

# ---- a COCO panoptic prediction as an end
$PY - <<'PY' || ko "scoring the panoptic prediction"
import json
d = json.load(open("w/pred.json"))
for a in d["annotations"]:
    for k, s in enumerate(a["segments_info"]):
        if k % 2:
            s["score"] = 0.5 + k / 1000
json.dump(d, open("w/pred_s.json", "w"))
PY
imp pan --panoptic-json w/pred_s.json --panoptic-dir w/pred || ko "panoptic import: $(cat st_pan.err)"
back st_pan pan || ko "panoptic: export: $(cat st_pan.err)"
$PY - <<'PY' && ok || ko "panoptic: the exported label maps or instances are not the prediction's"
import json, numpy as np
from PIL import Image
d = json.load(open("w/pred_s.json"))
things = {c["id"] for c in d["categories"] if c["isthing"]}
res = json.load(open("pan.json"))
for a in d["annotations"]:
    rgb = np.asarray(Image.open("w/pred/" + a["file_name"]).convert("RGB")).astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    lab = np.zeros(ids.shape, np.uint8)
    want = []
    for k, s in enumerate(a["segments_info"]):
        m = ids == s["id"]
        lab[m] = s["category_id"]
        if s["category_id"] in things and m.any():
            ys, xs = np.nonzero(m)
            want.append((s.get("score", 1.0), s["category_id"],
                         [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]))
    got = np.asarray(Image.open("pan.sem/" + a["file_name"]))
    assert (got == lab).all(), a["image_id"]
    mine = [(r["score"], r["category_id"], [int(v) for v in r["bbox"]]) for r in res if r["image_id"] == a["image_id"]]
    assert sorted(mine, key=str) == sorted(want, key=str), (a["image_id"], mine, want)
PY
cp -r w/pred wbad && cp w/pred_s.json wbad.json && $PY -c "
import json; d = json.load(open('wbad.json')); a = d['annotations'][0]; a['segments_info'] = a['segments_info'][1:]
json.dump(d, open('wbad.json', 'w'))"
refused "a PNG id without a segment" o13 "pixel (.*) has id .*, which segments_info lacks" --panoptic-json wbad.json --panoptic-dir wbad
refused "panoptic and results" o14 "no --results with it" --panoptic-json w/pred_s.json --results r.json

# ---- instance-only and semantic-only ends: fusion takes each side from the end that has it
imp io --results r.json || ko "instance-only import: $(cat st_io.err)"
imp so --semantic-dir sem || ko "semantic-only import: $(cat st_so.err)"
grep -q '"ss_kind": "none"' st_io/head.json && ! ls st_io | grep -q '\.ss\.' && ok || ko "instance-only store: $(cat st_io/head.json)"
grep -q '"instances": false' st_so/head.json && ok || ko "semantic-only store: no \"instances\": false"
"$AVPS" export --gt-json $GT --head net --backend replay --store st_io --results io.json >/dev/null &&
    cmp -s base.json io.json && ok || ko "instance-only export: not the base import's results"
"$AVPS" export --gt-json $GT --head net --backend replay --store st_so --results so.json --semantic-dir so.sem >/dev/null &&
    diff -r base.sem so.sem >/dev/null && [ "$(cat so.json)" = "[]" ] && ok || ko "semantic-only export"
"$AVPS" export --gt-json $GT --head net --backend replay --store st_io --semantic-dir io.sem >/dev/null 2>err &&
    ko "instance-only: semantic PNGs written" || { grep -q "has no semantic side" err && ok || ko "instance-only: $(cat err)"; }
$PY -c "
import json
cats = json.load(open('w/val.json'))['categories']
json.dump({'format': 'avps class table 1', 'metric': 'mask_ap', 'min_instances': 0, 'ends': ['a', 'b'],
           'overall_best': 'a', 'classes': [{'category_id': c['id'], 'end': 'a', 'fallback': False, 'n_heldout': 0,
           'score': {'a': None, 'b': None}} for c in cats if c['isthing']]}, open('ct.json', 'w'))"
"$AVPS" fuse --gt-json $GT --end a=replay:st_base --end b=replay:st_base --ss-weights 1,0 --class-table ct.json \
    --out-json ref.json >/dev/null || ko "reference fusion"
for order in "i=replay:st_io s=replay:st_so" "s=replay:st_so i=replay:st_io"; do
    set -- $order
    rm -rf fz fz.json
    "$AVPS" fuse --gt-json $GT --end "$1" --end "$2" --out-json fz.json >/dev/null 2>err || ko "fuse $order: $(cat err)"
    cmp -s ref.json fz.json && diff -r ref fz >/dev/null && ok || ko "fuse $order: not the full end's result"
done
"$AVPS" fuse --gt-json $GT --end i=replay:st_io --end s=replay:st_so --class-table ct.json --out-json fz2.json >/dev/null 2>&1 &&
    ko "a class table naming other ends accepted" || ok
"$AVPS" fuse --gt-json $GT --end i=replay:st_io --end j=replay:st_io --out-json fz3.json >/dev/null 2>err &&
    ko "two instance-only ends fused" || { grep -q "no semantic side to fuse" err && ok || ko "two instance-only ends: $(cat err)"; }
"$AVPS" fuse --gt-json $GT --end a=replay:st_base --end b=replay:st_base --out-json fz4.json >/dev/null 2>err &&
    ko "two full ends without a class table" || { grep -q "class-table is required" err && ok || ko "no table: $(cat err)"; }

# calibrate: an instance-only end's mask AP is its instances' (the same table as the full
# end gives); a semantic-only end, or an instance-only one for pq_th, is refused by name
H=w/heldout.json
for h in r50 htc_uw_dc; do
    "$AVPS" export --gt-json $H --head $h --backend sim --profile $h --results h_$h.json --semantic-dir h_$h.sem \
        >/dev/null || ko "export held-out $h"
done
"$AVPS" import --gt-json $H --results h_r50.json --semantic-dir h_r50.sem --out st_hf --head a >/dev/null &&
    "$AVPS" import --gt-json $H --results h_r50.json --out st_hi --head a >/dev/null &&
    "$AVPS" import --gt-json $H --semantic-dir h_r50.sem --out st_hs --head a >/dev/null &&
    "$AVPS" import --gt-json $H --results h_htc_uw_dc.json --semantic-dir h_htc_uw_dc.sem --out st_hb --head b \
        >/dev/null || ko "held-out imports"
"$AVPS" calibrate --heldout-json $H --end a=replay:st_hf --end b=replay:st_hb --min-instances 0 --out ct_full.json \
    >/dev/null 2>err || ko "calibrate full ends: $(cat err)"
"$AVPS" calibrate --heldout-json $H --end a=replay:st_hi --end b=replay:st_hb --min-instances 0 --out ct_io.json \
    >/dev/null 2>err || ko "calibrate with an instance-only end: $(cat err)"
[ -s ct_full.json ] && cmp -s ct_full.json ct_io.json && ok || ko "calibrate: an instance-only end gives another table"
"$AVPS" calibrate --heldout-json $H --end a=replay:st_hs --end b=replay:st_hb --out ct_so.json >/dev/null 2>err &&
    ko "calibrate with a semantic-only end" || { grep -q "end a gives no instances" err && [ ! -e ct_so.json ] && ok ||
    ko "calibrate semantic-only: $(cat err)"; }
"$AVPS" calibrate --heldout-json $H --end a=replay:st_hi --end b=replay:st_hb --metric pq_th --out ct_pq.json \
    >/dev/null 2>err && ko "pq_th with an instance-only end" || { grep -q "end a has no semantic side" err && ok ||
    ko "calibrate pq_th instance-only: $(cat err)"; }

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
