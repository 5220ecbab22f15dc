#!/usr/bin/env bash
# test_htc.sh: the native engine's Hybrid Task Cascade against mmdetection 3.3.0, stage by
# stage (tests/htc_compare.py says what each stage requires), on narrow HTCs that
# scripts/htc-reference builds with seeded random weights: a landscape and a portrait
# image that need an upscale, one that needs a downscale, the DC head (the semantic head's
# convolutions deformable, DCN v2), DCN v1 and v2 in the ResNet's stages 2-4, and --set
# min_size/max_size against a reference made at that scale. Then the results file (COCO results with the
# weights' category table), --semantic, the steady state, the native head, an `avps run`
# with this network as its LWL-HTC end (1 and 2 ranks), and bad weights and settings
# refused with a message and nothing written.
# Usage: tests/test_htc.sh AVPS_BINARY [--quick]   (--quick: the first variant and ResNet
# DCN v2 only, and the checks that need no other fixture; for the sanitizer run)
set -u
AVPS=$1
QUICK=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/avps_htc_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! PY=$("$ROOT/scripts/setup-venv" 2>"$T/venv.err") || ! "$PY" -c "import mmdet, mmengine" 2>/dev/null; then
    echo "SKIP: no mmdetection venv ($(tail -1 "$T/venv.err")); scripts/setup-venv needs PyPI"
    echo "0 passed, 0 failed"
    exit 0
fi

# The fixtures are made once per generator version (the plain and sanitizer runs share
# them, side by side: a lock per fixture, so that one run makes it while the other waits).
fixture() { # NAME ARGS... -> prints its folder
    local name=$1 d=$ROOT/build/htc/$1
    shift
    mkdir -p "$ROOT/build/htc"
    (
        flock 9
        if [ ! -f "$d/ref_masks.npy" ] || [ "$ROOT/scripts/htc-reference" -nt "$d/ref_masks.npy" ] ||
            [ "$ROOT/scripts/mmcv_tv_ops.py" -nt "$d/ref_masks.npy" ]; then
            rm -rf "$d" "$d.tmp"
            "$PY" "$ROOT/scripts/htc-reference" --out "$d.tmp" "$@" >"$T/gen-$name.log" 2>&1 && mv "$d.tmp" "$d" ||
                tail -5 "$T/gen-$name.log" >&2
        fi
    ) 9>"$d.lock"
    echo "$d"
}
compare() { # STAGE REF OUT
    local line
    line=$(/usr/bin/python3 "$ROOT/tests/htc_compare.py" "$@" 2>&1)
    printf '%s\n' "$line" | grep '^FAIL' | sed "s|^|$1 $(basename "$2"): |"
    local p=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    local f=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    [ -z "$p" ] && { ko "compare $1 gave no summary: $line"; return; }
    passed=$((passed + p)); failed=$((failed + f))
}
# Every stage of one reference: the whole network, then fed the reference proposals.
parity() { # REF NAME [INFER ARGS...]
    local R=$1 v=$2
    shift 2
    [ -f "$R/weights.safetensors" ] || { ko "$v: scripts/htc-reference failed"; return; }
    "$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/$v.json" \
        --dump-dir "$T/$v" "$@" || { ko "$v: infer"; return; }
    for stage in input fpn semantic proposals e2e; do compare $stage "$R" "$T/$v"; done
    "$AVPS" infer --weights "$R/weights.safetensors" --image "$R/image.png" --json "$T/$v.p.json" \
        --dump-dir "$T/$v.p" --proposals "$R/ref_proposals.npy" "$@" || { ko "$v: infer --proposals"; return; }
    compare heads "$R" "$T/$v.p"
}

R=$(fixture narrow --variant narrow --seed 1)
parity "$R" narrow
# DCN v2 in the ResNet, also under the sanitizers (the deformable path through the ResNet)
parity "$(fixture bbdcnv2 --variant narrow --seed 7 --size 131x97 --backbone-dcn DCNv2)" bbdcnv2
if [ "$QUICK" != --quick ]; then
    parity "$(fixture portrait --variant narrow --seed 2 --size 97x131)" portrait
    parity "$(fixture down --variant narrow --seed 3 --size 300x230 --scale 200,128)" down
    # the DC head: the semantic head's convolutions deformable (DCN v2; mmcv's v1 refuses
    # the bias those ConvModules have, so mmdetection cannot build a v1 DC head)
    parity "$(fixture dcv2 --variant narrow --seed 4 --dc-head DCNv2)" dcv2
    # DCN in the ResNet (conv2 of every bottleneck of stages 2-4), v1 (v2 below)
    parity "$(fixture bbdcn --variant narrow --seed 6 --size 131x97 --backbone-dcn DCN)" bbdcn
    # the narrow weights (metadata scale 400,256) at mmdetection's scale=(200, 128)
    [ -f "$R/weights.safetensors" ] &&
        parity "$(fixture rescaled --variant narrow --seed 1 --scale 200,128 --weights "$R/weights.safetensors")" \
            rescaled --set max_size=200 --set min_size=128
fi
W=$R/weights.safetensors
[ -f "$W" ] || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

# ---- the results file: COCO results (CocoMetric's [x, y, x2 - x1, y2 - y1]), the
# weights' thing_categories for the labels, best first, masks of the image's size
/usr/bin/python3 - "$T/narrow.json" "$T/narrow" <<'PYEOF' && ok || ko "results JSON does not hold the detections"
import json, sys
import numpy as np
res, d = json.load(open(sys.argv[1])), sys.argv[2]
boxes, scores, labels = np.load(d + "/boxes.npy"), np.load(d + "/scores.npy"), np.load(d + "/labels.npy")
table = [1, 2, 3, 5, 8, 13, 21]
assert len(res) == len(scores) > 10, len(res)
for r, b, s, l in zip(res, boxes, scores, labels):
    assert abs(r["score"] - s) < 1e-6 and r["category_id"] == table[l], (r, s, l)
    want = [b[0], b[1], b[2] - b[0], b[3] - b[1]]
    assert max(abs(x - y) for x, y in zip(r["bbox"], want)) < 1e-3, (r["bbox"], want)
    assert r["segmentation"]["size"] == [113, 150]
PYEOF

# ---- numerics=mmdet_v1 (no runnable v1 reference: the operators are checked by hand in
# tests/unit_mmdet_v1.c): what comes before the boxes is unchanged, the boxes change, and
# each stage's refined RoIs are v1's delta2bbox (+1 sizes, corners -+ 0.5) of its inputs,
# as numpy computes it here, which 3.x's formula does not give (and does give the plain run)
"$AVPS" infer --weights "$W" --image "$R/image.png" --json "$T/v1.json" --dump-dir "$T/v1" --set numerics=mmdet_v1 ||
    ko "infer --set numerics=mmdet_v1"
/usr/bin/python3 - "$T/narrow" "$T/v1" <<'PYEOF' && ok || ko "numerics=mmdet_v1 does not change what it should and only that"
import sys
import numpy as np
a, b = sys.argv[1], sys.argv[2]
L = lambda d, n: np.load("%s/%s.npy" % (d, n)).astype(np.float64)
for n in ["input", "backbone_3", "fpn_0", "fpn_4", "semantic_logits"]:
    assert (L(a, n) == L(b, n)).all(), n
assert L(a, "proposals").shape == L(b, "proposals").shape and not np.allclose(L(a, "proposals"), L(b, "proposals"))
def decode(rois, d, stds, one):
    d = d * np.array(stds)
    clip = abs(np.log(16 / 1000))
    dw, dh = np.clip(d[:, 2], -clip, clip), np.clip(d[:, 3], -clip, clip)
    pw, ph = rois[:, 2] - rois[:, 0] + one, rois[:, 3] - rois[:, 1] + one
    gx, gy = (rois[:, 0] + rois[:, 2]) / 2 + pw * d[:, 0], (rois[:, 1] + rois[:, 3]) / 2 + ph * d[:, 1]
    gw, gh = pw * np.exp(dw), ph * np.exp(dh)
    h = one / 2
    return np.stack([gx - gw / 2 + h, gy - gh / 2 + h, gx + gw / 2 - h, gy + gh / 2 - h], 1)
stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1]]
for s in (0, 1):
    for d, one, other in ((b, 1, 0), (a, 0, 1)):
        rois, delta, nxt = L(d, "stage%d_rois" % s), L(d, "stage%d_bbox" % s), L(d, "stage%d_rois" % (s + 1))
        want, wrong = decode(rois, delta, stds[s], one), decode(rois, delta, stds[s], other)
        inside = (want[:, :2] > 1).all(1) & (want[:, 2] < 300) & (want[:, 3] < 230) & (wrong[:, :2] > 1).all(1)
        assert inside.sum() > 100, inside.sum()
        err = np.abs(nxt[inside] - want[inside]).max()
        assert err < 2e-3, (d, s, err)
        assert np.abs(nxt[inside] - wrong[inside]).max() > 0.2, (d, s)
PYEOF

# ---- --semantic: the head's logits as .npy, the dump's
"$AVPS" infer --weights "$W" --image "$R/image.png" --semantic "$T/sem.npy" || ko "infer --semantic"
/usr/bin/python3 -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape == (1, 9, 32, 44) and (a == b).all()" "$T/sem.npy" "$T/narrow/semantic_logits.npy" &&
    ok || ko "--semantic does not write the semantic logits"

# ---- steady state: images after the first allocate nothing from the system
"$AVPS" infer --weights "$W" --image "$R/image.png" --json "$T/rep.json" --repeat 3 2>"$T/rep.err" ||
    ko "infer --repeat 3"
grep -q " 0 arena blocks allocated after the first image" "$T/rep.err" && ok ||
    ko "later images allocated arena blocks: $(cat "$T/rep.err")"
cmp -s "$T/rep.json" "$T/narrow.json" && ok || ko "the third run's results differ from a single run's"

# ---- the native head (avps export --backend native): the instances avps infer gives;
# a dataset without one of the semantic head's categories is refused at load
mkdir -p "$T/ds/img"
cp "$R/image.png" "$T/ds/img/a.png" && cp "$R/image.png" "$T/ds/img/b.png"
/usr/bin/python3 - "$T/ds" <<'PYEOF' || ko "could not write the datasets"
import json, sys
def write(path, ids):
    cats = [{"id": i, "name": "c%d" % i, "isthing": int(i < 92), "supercategory": "x"} for i in ids]
    imgs = [{"id": k + 1, "file_name": f, "width": 150, "height": 113} for k, f in enumerate(["a.png", "b.png"])]
    anns = [{"image_id": k + 1, "file_name": f, "segments_info": []} for k, f in enumerate(["a.png", "b.png"])]
    json.dump({"images": imgs, "annotations": anns, "categories": cats}, open(path, "w"))
write(sys.argv[1] + "/gt.json", [1, 2, 3, 5, 8, 13, 21, 92, 118])
write(sys.argv[1] + "/gt_short.json", [1, 2, 3, 5, 8, 13, 21, 92])
PYEOF
"$AVPS" export --gt-json "$T/ds/gt.json" --head net --backend native --weights "$W" \
    --images "$T/ds/img" --results "$T/ds/res.json" --threads 2 2>"$T/exp.err" || ko "export --backend native: $(cat "$T/exp.err")"
/usr/bin/python3 - "$T/ds/res.json" "$T/narrow.json" <<'PYEOF' && ok || ko "the native head's instances differ from avps infer's"
import json, sys
res, inf = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
key = lambda r: (r["category_id"], r["segmentation"]["counts"], r["score"])
want = sorted((key(r) for r in inf))
for image_id in (1, 2):
    got = sorted(key(r) for r in res if r["image_id"] == image_id)
    assert len(got) == len(want) > 10, (image_id, len(got), len(want))
    assert all(g[:2] == w[:2] and abs(g[2] - w[2]) < 1e-6 for g, w in zip(got, want)), image_id
PYEOF
"$AVPS" export --gt-json "$T/ds/gt_short.json" --head net --backend native --weights "$W" \
    --images "$T/ds/img" --results "$T/ds/bad.json" >/dev/null 2>"$T/err" && ko "unmapped semantic class: exit 0" ||
    { grep -q "category 118" "$T/err" && [ ! -e "$T/ds/bad.json" ] && ok || ko "unmapped semantic class: $(cat "$T/err")"; }

# ---- an `avps run` whose LWL-HTC end is this network (native head, on a synthetic world
# with the fixture image under every file name): the report is the same for 1 and 2
# ranks. OpenBLAS's results depend on its thread count, so it gets one thread in both.
if [ "$QUICK" != --quick ]; then
    "$AVPS" synth --out "$T/w" --images 3 --heldout 3 --size 150x113 >/dev/null || ko "synth"
    mkdir -p "$T/w/img"
    for f in $(/usr/bin/python3 -c "
import json, sys
for s in ('val', 'heldout'):
    for i in json.load(open(sys.argv[1] + '/%s.json' % s))['images']: print(i['file_name'])" "$T/w"); do
        cp "$R/image.png" "$T/w/img/$f"
    done
    cat >"$T/w/run.json" <<EOF
{"seed": 1, "datasets": {"heldout": {"gt_json": "heldout.json"}, "eval": {"gt_json": "val.json"}},
 "heads": [{"name": "r50", "backend": "sim", "profile": "r50"},
           {"name": "htc", "backend": "native", "profile": "$W", "store": "img"}],
 "ensemble": {"name": "e_ups", "members": ["r50"]}, "lwl_htc": "htc", "fusion": {"min_instances": 1}}
EOF
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    OPENBLAS_NUM_THREADS=1 "$AVPS" run "$T/w/run.json" --out "$T/w/one" --quiet >/dev/null 2>"$T/run.err" ||
        ko "avps run with a native HTC end: $(tail -3 "$T/run.err")"
    OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -np 2 "$AVPS" run "$T/w/run.json" --out "$T/w/two" \
        --quiet >/dev/null 2>"$T/run.err" || ko "mpirun -np 2 avps run with a native HTC end: $(tail -3 "$T/run.err")"
    cmp -s "$T/w/one/report.json" "$T/w/two/report.json" && ok || ko "the report differs for 1 and 2 ranks"
    /usr/bin/python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['ends']['lwl_htc']['Things']['n'] > 0 and r['ss_miou']['lwl_htc'] > 0, r['ss_miou']" "$T/w/one/report.json" &&
        ok || ko "the LWL-HTC end has no things or no semantic segmentation in the report"
fi

# ---- bad weights and settings: a clear error, non-zero exit, no results file
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
expect_error "unknown --set key" "--set no_such_key=1: not a setting" --weights "$W" --image "$R/image.png" \
    --set no_such_key=1
expect_error "bad --set value" "min_size" --weights "$W" --image "$R/image.png" --set min_size=0
expect_error "unknown numerics" "mmdet_v1" --weights "$W" --image "$R/image.png" --set numerics=mmdet_v2
/usr/bin/python3 - "$W" "$T" <<'PYEOF' || ko "could not write the broken weights"
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
def write(name, h):
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    open("%s/%s.safetensors" % (out, name), "wb").write(struct.pack("<Q", len(text)) + text + data)
h = json.loads(json.dumps(head)); h["__metadata__"]["semantic_categories"] = "1,2,3"
write("table", h)
h = json.loads(json.dumps(head)); del h["__metadata__"]["thing_categories"]
write("notable", h)
h = json.loads(json.dumps(head)); h["__metadata__"]["num_stages"] = "2"
write("stages", h)
h = json.loads(json.dumps(head)); h["roi_head.mask_head.1.conv_logits.weight"]["shape"][0] -= 1
t = h["roi_head.mask_head.1.conv_logits.weight"]; k = 1
for v in t["shape"]: k *= v
t["data_offsets"][1] = t["data_offsets"][0] + 4 * k
write("shape", h)
h = json.loads(json.dumps(head)); h["roi_head.bbox_head.1.fc_reg.bias_x"] = h.pop("roi_head.bbox_head.1.fc_reg.bias")
write("missing", h)
PYEOF
expect_error "short category table" "semantic_categories lists 3 categories, the network has 9" --weights "$T/table.safetensors" \
    --image "$R/image.png"
expect_error "7 classes, no table" "7 classes need a class-to-category table" --weights "$T/notable.safetensors" \
    --image "$R/image.png"
expect_error "num_stages against the weights" "num_stages = 2, the weights have 3" --weights "$T/stages.safetensors" \
    --image "$R/image.png"
expect_error "a mask stage's classes" "mask_head.1" --weights "$T/shape.safetensors" --image "$R/image.png"
expect_error "a missing tensor" "roi_head.bbox_head.1.fc_reg.bias" --weights "$T/missing.safetensors" --image "$R/image.png"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
