#!/usr/bin/env bash
# test_upsnet_heads.sh: UPSNet's RPN, box, mask and panoptic heads (model/nn/nets/upsnet/)
# against the answer keys of ../shared/reference/upsnet, each stage fed the key's own
# inputs (FPN levels, proposals, detections, semantic logits), on both public cases;
# tests/upsnet_heads_compare.py says what each stage requires. A damaged output must
# fail the comparison (so the comparison can fail), and bad weights are refused with a
# message naming file and tensor.
# Usage: tests/test_upsnet_heads.sh HEADS_TOOL   (build/tests/upsnet_heads_tool or its san_ twin)
set -u
TOOL=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=$ROOT/../shared/reference/upsnet
PY=/usr/bin/python3
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }

if [ ! -f "$REF/make_weights.py" ]; then
    echo "SKIP: no UPSNet answer keys at $REF"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! $PY -c "import numpy" 2>/dev/null; then
    echo "SKIP: $PY has no numpy"
    echo "0 passed, 0 failed"
    exit 0
fi
T=$(mktemp -d /tmp/avps_upsheads_XXXXXX)
trap 'rm -rf "$T"' EXIT

# The weights are made once under build/ (the plain and sanitizer runs share them).
weights() { # CASE -> prints the safetensors path
    local w=$ROOT/build/upsnet/$1.safetensors
    if [ ! -f "$w" ] || [ "$REF/make_weights.py" -nt "$w" ] || [ "$REF/$1/spec.json" -nt "$w" ]; then
        mkdir -p "$ROOT/build/upsnet"
        $PY "$REF/make_weights.py" "$REF/$1/spec.json" "$w.tmp" >/dev/null && mv "$w.tmp" "$w"
    fi
    echo "$w"
}
compare() { # KEYS OUT -> adds its counts
    local line p f
    line=$($PY "$ROOT/tests/upsnet_heads_compare.py" "$1" "$2" 2>&1)
    printf '%s\n' "$line" | grep '^FAIL' | sed "s|^|$(basename "$1"): |"
    p=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    [ -z "$p" ] && { ko "compare $1 gave no summary: $line"; return; }
    passed=$((passed + p)); failed=$((failed + f))
}

for c in resnet50 resnet101_dcn; do
    W=$(weights $c)
    [ -f "$W" ] || { ko "$c: make_weights.py failed"; continue; }
    mkdir -p "$T/$c"
    if "$TOOL" "$W" "$REF/$c" "$T/$c" >/dev/null; then ok; else ko "$c: upsnet_heads_tool"; continue; fi
    compare "$REF/$c" "$T/$c"
done

# The comparison fails on damaged outputs: a detection score, a panoptic label, a proposal.
if [ -f "$T/resnet50/det_scores.npy" ]; then
    cp -r "$T/resnet50" "$T/bad"
    $PY - "$T/bad" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
s = np.load(d + '/det_scores.npy'); s[3] += 1e-3; np.save(d + '/det_scores.npy', s)
l = np.load(d + '/pan_labels.npy'); l[60, 90] = 254; np.save(d + '/pan_labels.npy', l)
r = np.load(d + '/rpn_rois.npy'); r[10, 2] += 0.05; np.save(d + '/rpn_rois.npy', r)
PYEOF
    out=$($PY "$ROOT/tests/upsnet_heads_compare.py" "$REF/resnet50" "$T/bad" 2>&1)
    for what in "detections:" "pan_labels:" "proposals:"; do
        printf '%s\n' "$out" | grep -q "^FAIL: $what" && ok || ko "a damaged $what output passed the comparison"
    done
fi

# Bad weights: a head tensor missing, one of the wrong shape; the message names both.
W=$ROOT/build/upsnet/resnet50.safetensors
if [ -f "$W" ]; then
    $PY - "$W" "$T/missing.safetensors" "$T/shape.safetensors" <<'PYEOF'
import json, struct, sys
src, missing, shape = sys.argv[1:4]
f = open(src, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; head = json.loads(f.read(n)); data = f.read()
def write(path, head, data):
    h = json.dumps(head).encode(); h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + data)
h1 = dict(head); del h1['rcnn.cls_score.weight']; write(missing, h1, data)
h2 = dict(head); t = dict(h2['mask_branch.mask_score.weight']); b, e = t['data_offsets']
t['shape'] = [80, 256, 1, 1]; t['data_offsets'] = [b, b + 80 * 256 * 4]; h2['mask_branch.mask_score.weight'] = t
write(shape, h2, data)
PYEOF
    mkdir -p "$T/o"
    err=$("$TOOL" "$T/missing.safetensors" "$REF/resnet50" "$T/o" 2>&1 >/dev/null) && ko "missing tensor accepted" ||
        { printf '%s' "$err" | grep -q "missing.safetensors.*rcnn.cls_score.weight" && ok || ko "missing tensor: $err"; }
    err=$("$TOOL" "$T/shape.safetensors" "$REF/resnet50" "$T/o" 2>&1 >/dev/null) && ko "wrong shape accepted" ||
        { printf '%s' "$err" | grep -q "shape.safetensors.*mask_branch.mask_score" && ok || ko "wrong shape: $err"; }
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
