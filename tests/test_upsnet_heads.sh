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

# The heads' copies of cv2's resizes against cv2 itself (the answer keys' OpenCV 4.10):
# INTER_LINEAR to a given size (mask removal; every size pair of a list, the 2x area path
# included) bit for bit with OpenCV's own code (IPP off), within 1e-4 of its IPP path
# (cv2's default, a few ulps apart); INTER_NEAREST by a factor (post-processing) exactly.
if PYV=$("$ROOT/scripts/setup-venv" 2>/dev/null) && "$PYV" -c "import cv2" 2>/dev/null; then
    mkdir -p "$T/cv"
    out=$("$PYV" - "$TOOL" "$T/cv" <<'PYEOF' 2>&1
import subprocess, sys
import cv2
import numpy as np
tool, d = sys.argv[1:3]
rng = np.random.default_rng(5)
src = (rng.standard_normal((28, 28)) * 4).astype(np.float32)
np.save(d + '/src.npy', src)
ss = [1, 2, 3, 5, 7, 13, 14, 15, 27, 28, 29, 41, 56, 57, 100, 203]
sizes = np.array([(w, h) for w in ss for h in ss], dtype=np.int32)
np.save(d + '/sizes.npy', sizes)
subprocess.run([tool, 'cv-linear', d + '/src.npy', d + '/sizes.npy', d], check=True)
exact = close = 0
for i, (w, h) in enumerate(sizes):
    got = np.load('%s/linear_%d.npy' % (d, i))
    cv2.ipp.setUseIPP(False)
    exact += np.array_equal(got, cv2.resize(src, (int(w), int(h))))
    cv2.ipp.setUseIPP(True)
    close += np.max(np.abs(got - cv2.resize(src, (int(w), int(h))))) <= 1e-4
print('linear exact %d close %d of %d' % (exact, close, len(sizes)))
lab = rng.integers(0, 255, (128, 176), dtype=np.uint8)
np.save(d + '/lab.npy', lab)
same = 0
factors = [float(np.float32(1) / np.float32(128 / 240)), 1.5, 2.0, 0.7, float(np.float32(1) / np.float32(160 / 240))]
for f in factors:
    subprocess.run([tool, 'cv-nearest', d + '/lab.npy', repr(f), d + '/near.npy'], check=True)
    ref = cv2.resize(lab, None, None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST)
    got = np.load(d + '/near.npy')
    same += ref.shape == got.shape and np.array_equal(ref, got)
print('nearest %d of %d' % (same, len(factors)))
PYEOF
)
    printf '%s\n' "$out" | grep -q "^linear exact 256 close 256 of 256$" && ok || ko "cv2 INTER_LINEAR: $out"
    printf '%s\n' "$out" | grep -q "^nearest 5 of 5$" && ok || ko "cv2 INTER_NEAREST: $out"
    # the trunk's resize by the scale factor (preprocessing) on BGR float images of odd
    # sizes, down and up (the first and last rows of an upscale, where cv2 clips the rows
    # it reads but keeps their weights) and the exact 2x downscale (cv2's area path, odd
    # sides included): bit for bit with OpenCV's own code; its IPP path (what the keys'
    # input.npy holds) rounds otherwise, up to ~5e-3 on values of +-150
    out=$("$PYV" - "$TOOL" "$T/cv" <<'PYEOF' 2>&1
import subprocess, sys
import cv2
import numpy as np
tool, d = sys.argv[1:3]
rng = np.random.default_rng(7)
fs = [128 / 240, 0.31, 0.5, 0.77, 1.0, 1.3, 1.7, 2.0, 2.3, 3.0, 4.41, 128 / 29, 224 / 41]
exact = n = 0
for h, w in [(29, 41), (27, 43), (1, 5), (3, 2), (240, 330)]:
    img = (rng.uniform(0, 255, (h, w, 3)) - [102.9801, 115.9465, 122.7717]).astype(np.float32)
    np.save(d + '/bgr.npy', np.ascontiguousarray(img.transpose(2, 0, 1)))
    for f in (f for f in fs if round(h * f) >= 1 and round(w * f) >= 1):
        subprocess.run([tool, 'cv-linear-f', d + '/bgr.npy', repr(f), d + '/o.npy'], check=True)
        got = np.load(d + '/o.npy').transpose(1, 2, 0)
        cv2.ipp.setUseIPP(False)
        ref = cv2.resize(img, None, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        cv2.ipp.setUseIPP(True)
        n += 1
        if ref.shape == got.shape and np.array_equal(ref, got):
            exact += 1
        else:
            print('%dx%d by %.4f: %s' % (w, h, f, 'shape %s, cv2 %s' % (got.shape, ref.shape) if ref.shape != got.shape
                                         else '%d values differ' % (got != ref).sum()))
print('factor exact %d of %d' % (exact, n))
PYEOF
)
    printf '%s\n' "$out" | grep -q "^factor exact 63 of 63$" && ok || ko "cv2 INTER_LINEAR by a factor: $(printf '%s\n' "$out" | tail -4)"
else
    echo "SKIP: no cv2 in build/venv (scripts/setup-venv): the resizes are not checked against cv2"
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
