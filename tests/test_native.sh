#!/usr/bin/env bash
# test_native.sh: the native engine against torchvision, stage by stage, on networks that
# scripts/native-reference builds with seeded random weights (a narrow ResNet-FPN with
# bottleneck blocks, and one with basic blocks): FPN features, RPN proposals, the box and
# mask heads fed the reference proposals, and end to end (tests/native_compare.py says
# what each stage requires); JPEG input; bad weights and images refused with a message
# naming file and tensor, and nothing written.
# Usage: tests/test_native.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/avps_native_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! $PY -c "import torch, torchvision" 2>/dev/null; then
    echo "SKIP: $PY has no torch/torchvision (scripts/setup-deps installs python3-torch, python3-torchvision)"
    echo "0 passed, 0 failed"
    exit 0
fi

# The fixtures are made once per generator version (the plain and sanitizer runs share
# them, side by side: a lock per fixture, so that one run makes it while the other waits).
fixture() { # NAME ARGS... -> prints its folder
    local d=$ROOT/build/native/$1
    shift
    mkdir -p "$ROOT/build/native"
    (
        flock 9
        if [ ! -f "$d/ref_masks.npy" ] || [ "$ROOT/scripts/native-reference" -nt "$d/ref_masks.npy" ] ||
            [ "$ROOT/scripts/pth-to-safetensors" -nt "$d/ref_masks.npy" ]; then
            rm -rf "$d" "$d.tmp"
            $PY "$ROOT/scripts/native-reference" --out "$d.tmp" "$@" >/dev/null && mv "$d.tmp" "$d"
        fi
    ) 9>"$d.lock"
    echo "$d"
}
compare() { # STAGE REF OUT
    local line
    line=$($PY "$ROOT/tests/native_compare.py" "$@" 2>&1)
    printf '%s\n' "$line" | grep '^FAIL' | sed "s|^|$1: |"
    local p=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    local f=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    [ -z "$p" ] && { ko "compare $1 gave no summary: $line"; return; }
    passed=$((passed + p)); failed=$((failed + f))
}

# ---- parity, stage by stage
for v in narrow narrow_basic; do
    R=$(fixture $v --variant $v)
    [ -f "$R/weights.safetensors" ] || { ko "$v: scripts/native-reference failed"; continue; }
    "$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/$v.json" \
        --dump-dir "$T/$v" || ko "$v: infer"
    compare fpn "$R" "$T/$v"
    compare proposals "$R" "$T/$v"
    compare e2e "$R" "$T/$v"
    "$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/$v.p.json" \
        --dump-dir "$T/$v.p" --proposals "$R/ref_proposals.npy" || ko "$v: infer --proposals"
    compare heads "$R" "$T/$v.p"
done
R=$ROOT/build/native/narrow

# ---- resized inputs (issue 12): down and up, landscape and portrait, odd sizes, and
# sizes whose scale (1 / side) * max_size in float32 differs from max_size / side; the
# padded input must be torchvision's to the bit (tests/native_compare.py input)
for spec in "narrow 640x480" "narrow_basic 165x101" "narrow 101x171"; do
    set -- $spec
    d=$(fixture resize-$1-$2 --variant "$1" --size "$2")
    [ -f "$d/weights.safetensors" ] || { ko "$spec: scripts/native-reference failed"; continue; }
    "$AVPS" infer --weights "$d/weights.safetensors" --image "$d/image.png" --json "$T/rs.json" \
        --dump-dir "$T/rs-$1-$2" || ko "$spec: infer"
    compare input "$d" "$T/rs-$1-$2"
    compare fpn "$d" "$T/rs-$1-$2"
    compare e2e "$d" "$T/rs-$1-$2"
done

# ---- the results file: COCO results, one per detection, best first, masks of the image's size
$PY - "$T/narrow.json" "$T/narrow/scores.npy" <<'PYEOF' && ok || ko "results JSON does not hold the detections"
import json, sys
import numpy as np
res, scores = json.load(open(sys.argv[1])), np.load(sys.argv[2])
assert len(res) == len(scores) > 0
assert all(abs(r["score"] - s) < 1e-6 for r, s in zip(res, scores))
assert all(r["segmentation"]["size"] == [113, 150] and len(r["bbox"]) == 4 for r in res)
PYEOF
"$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/thr.json" --score-thr 0.5 \
    --detections 7 || ko "infer --score-thr"
$PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert 0 < len(r) <= 7 and min(x['score'] for x in r) > 0.5" \
    "$T/thr.json" && ok || ko "--score-thr 0.5 --detections 7 not honoured"

# ---- the native head backend (avps export --backend native): on each image of a dataset,
# the instances avps infer gives, less those of classes the dataset lacks (here 7)
mkdir -p "$T/ds/img"
cp "$R/image.png" "$T/ds/img/a.png" && cp "$R/image.png" "$T/ds/img/b.png"
$PY - "$T/ds/gt.json" <<'PYEOF' || ko "could not write the dataset"
import json, sys
cats = [{"id": i, "name": "c%d" % i, "isthing": 1, "supercategory": "x"} for i in range(1, 11) if i != 7]
imgs = [{"id": k + 1, "file_name": f, "width": 150, "height": 113} for k, f in enumerate(["a.png", "b.png"])]
anns = [{"image_id": k + 1, "file_name": f, "segments_info": []} for k, f in enumerate(["a.png", "b.png"])]
json.dump({"images": imgs, "annotations": anns, "categories": cats}, open(sys.argv[1], "w"))
PYEOF
"$AVPS" export --gt-json "$T/ds/gt.json" --head net --backend native --weights "$R/weights.safetensors" \
    --images "$T/ds/img" --results "$T/ds/res.json" --threads 2 || ko "export --backend native"
$PY - "$T/ds/res.json" "$T/narrow.json" <<'PYEOF' && ok || ko "the native head's instances differ from avps infer's"
import json, sys
res, inf = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
want = [(r["category_id"], round(r["score"], 6), r["segmentation"]["counts"]) for r in inf if r["category_id"] != 7]
assert len(want) < len(inf) or not any(r["category_id"] == 7 for r in inf)
for image_id in (1, 2):
    got = [(r["category_id"], round(r["score"], 6), r["segmentation"]["counts"]) for r in res if r["image_id"] == image_id]
    assert sorted(got) == sorted(want), (image_id, len(got), len(want))
PYEOF
"$AVPS" export --gt-json "$T/ds/gt.json" --head net --backend native --images "$T/ds/img" \
    --results "$T/ds/bad.json" >/dev/null 2>"$T/err" && ko "native head without weights: exit 0" ||
    { grep -q "needs weights" "$T/err" && [ ! -e "$T/ds/bad.json" ] && ok || ko "native head without weights: $(cat "$T/err")"; }

# ---- steady state: images after the first allocate nothing from the system
"$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/rep.json" --repeat 3 \
    2>"$T/rep.err" || ko "infer --repeat 3"
grep -q " 0 arena blocks allocated after the first image" "$T/rep.err" && ok ||
    ko "later images allocated arena blocks: $(cat "$T/rep.err")"
cmp -s "$T/rep.json" "$T/narrow.json" && ok || ko "the third run's results differ from a single run's"

# ---- JPEG: the same pixels as PNG give the same results
$PY - "$R/image.png" "$T/im.jpg" "$T/im_jpg.png" <<'PYEOF' || ko "could not write the JPEG fixture"
import sys
from PIL import Image
Image.open(sys.argv[1]).save(sys.argv[2], quality=90)
Image.open(sys.argv[2]).convert("RGB").save(sys.argv[3])
PYEOF
"$AVPS" infer --weights "$R/weights.safetensors" --image "$T/im.jpg" --json "$T/jpg.json" || ko "infer on JPEG"
"$AVPS" infer --weights "$R/weights.safetensors" --image "$T/im_jpg.png" --json "$T/jpgpng.json" || ko "infer on PNG"
cmp -s "$T/jpg.json" "$T/jpgpng.json" && ok || ko "a JPEG and the PNG of its pixels give different results"

# ---- bad input: a clear error, non-zero exit, no results file
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2; shift 2
    rm -f "$T/bad.json"
    if "$AVPS" infer --json "$T/bad.json" "$@" >/dev/null 2>"$T/err"; then
        ko "$what: exit 0"
    elif ! grep -q -- "$pattern" "$T/err"; then
        ko "$what: error does not say '$pattern': $(cat "$T/err")"
    elif [ -e "$T/bad.json" ]; then
        ko "$what: a results file was left behind"
    else
        ok
    fi
}
W=$R/weights.safetensors
head -c $(($(stat -c %s "$W") / 2)) "$W" >"$T/trunc.safetensors"
expect_error "truncated weights" "trunc.safetensors: tensor" --weights "$T/trunc.safetensors" --image "$R/image.png"
head -c 5 "$W" >"$T/tiny.safetensors"
expect_error "5-byte weights" "tiny.safetensors: not a safetensors file" --weights "$T/tiny.safetensors" --image "$R/image.png"
# header edits: one tensor's shape, one tensor's dtype, two tensors overlapping
$PY - "$W" "$T" <<'PYEOF' || ko "could not write the broken weights"
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
def write(name, h):
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    open("%s/%s.safetensors" % (out, name), "wb").write(struct.pack("<Q", len(text)) + text + data)
h = json.loads(json.dumps(head)); t = h["rpn.head.cls_logits.weight"]
t["shape"] = [t["shape"][0] + 1, t["shape"][1] // 1, 1, 1]; t["shape"][1] = t["shape"][1]
e = t["data_offsets"]; e[1] = e[0] + 4 * t["shape"][0] * t["shape"][1]
h2 = json.loads(json.dumps(head)); h2["backbone.fpn.inner_blocks.0.0.weight"]["dtype"] = "F9"
h3 = json.loads(json.dumps(head)); a, b = h3["backbone.body.conv1.weight"], h3["backbone.body.bn1.weight"]
b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + b["data_offsets"][1] - b["data_offsets"][0]]
h4 = json.loads(json.dumps(head)); h4["backbone.body.conv1.weight"]["shape"] = [16, 3, 7, 8]
write("shape", h); write("dtype", h2); write("overlap", h3); write("size", h4)
PYEOF
expect_error "wrong shape for the architecture" "rpn.head" --weights "$T/shape.safetensors" --image "$R/image.png"
expect_error "unknown dtype" "inner_blocks.0.0.weight: unknown dtype \"F9\"" --weights "$T/dtype.safetensors" \
    --image "$R/image.png"
expect_error "overlapping tensors" "overlap" --weights "$T/overlap.safetensors" --image "$R/image.png"
expect_error "offsets against dtype x shape" "conv1.weight: data_offsets hold" --weights "$T/size.safetensors" \
    --image "$R/image.png"
expect_error "missing weights" "nowhere.safetensors: cannot open" --weights "$T/nowhere.safetensors" --image "$R/image.png"
echo "not an image" >"$T/text.png"
expect_error "unreadable image" "text.png: not a PNG or JPEG" --weights "$W" --image "$T/text.png"
head -c $(($(stat -c %s "$T/im.jpg") / 2)) "$T/im.jpg" >"$T/cut.jpg"
expect_error "truncated JPEG" "cut.jpg: bad JPEG" --weights "$W" --image "$T/cut.jpg"
expect_error "unknown device" "unknown device" --weights "$W" --image "$R/image.png" --device tpu

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
