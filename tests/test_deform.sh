#!/usr/bin/env bash
# test_deform.sh: the engine's deform_conv2d (model/nn/cpu/deform.c) against
# torchvision.ops.deform_conv2d, v1 and v2, on small random cases whose offsets put taps
# between pixels and off the map; relative L2 error <= 1e-5, plain and BLAS GEMM.
# Usage: tests/test_deform.sh PATH/TO/deform_tool
set -u
TOOL=$1
PY=/usr/bin/python3
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { echo "FAIL: $*"; failed=$((failed + 1)); }
if ! "$PY" -c 'import torch, torchvision.ops' 2>/dev/null; then
    echo "SKIP: $PY has no torch/torchvision (scripts/setup-deps installs python3-torch, python3-torchvision)"
    echo "0 passed, 0 failed"; exit 0
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# name N C H W O kh kw stride pad dilation offset_groups v2 offset_scale seed
cases="v1_3x3 1 3 7 9 4 3 3 1 1 1 1 0 2.5 1
v2_3x3 2 3 7 9 4 3 3 1 1 1 1 1 2.5 2
v2_stride2 1 4 11 10 5 3 3 2 1 1 1 1 3.0 3
v1_dil2 1 4 12 9 3 3 3 1 2 2 1 0 4.0 4
v2_dil2_stride2 2 4 13 12 3 3 3 2 2 2 1 1 4.0 5
v2_groups2 1 6 9 8 5 3 3 1 1 1 2 1 2.5 6
v1_groups2_1x3 1 4 6 10 2 1 3 2 0 1 2 0 6.0 7
v2_far_outside 1 2 5 5 3 3 3 1 1 1 1 1 12.0 8"

while read -r name n c h w o kh kw s p d g v2 sc seed; do
    D=$T/$name; mkdir -p "$D"
    "$PY" - "$D" $n $c $h $w $o $kh $kw $s $p $d $g $v2 $sc $seed <<'PYEOF' || { ko "$name: generator"; continue; }
import sys, numpy as np, torch, torchvision.ops as ops
d = sys.argv[1]
n, c, h, w, o, kh, kw, s, p, dil, g, v2 = map(int, sys.argv[2:14])
sc, seed = float(sys.argv[14]), int(sys.argv[15])
torch.manual_seed(seed)
x = torch.randn(n, c, h, w)
wt = torch.randn(o, c, kh, kw)
b = torch.randn(o)
ho = (h + 2 * p - (dil * (kh - 1) + 1)) // s + 1
wo = (w + 2 * p - (dil * (kw - 1) + 1)) // s + 1
off = (torch.rand(n, 2 * g * kh * kw, ho, wo) * 2 - 1) * sc
mask = torch.rand(n, g * kh * kw, ho, wo) if v2 else None
ref = ops.deform_conv2d(x, off, wt, b, stride=s, padding=p, dilation=dil, mask=mask)
# the cases must exercise what they claim: taps between pixels and off the map
fy = off[:, 0::2].numpy()
assert (np.abs(fy - np.round(fy)) > 1e-3).any()
assert (np.abs(off.numpy()) > p + 1).any()
for k, v in dict(input=x, weight=wt, bias=b, offset=off, mask=mask, expected=ref).items():
    if v is not None:
        np.save(f"{d}/{k}.npy", v.numpy().astype(np.float32))
PYEOF
    "$TOOL" "$D" $s $p $d $g || { ko "$name: deform_tool failed"; continue; }
    for out in out out_blas; do
        "$PY" - "$D/$out.npy" "$D/expected.npy" <<'PYEOF' && ok || ko "$name: $out differs from torchvision"
import sys, numpy as np
a, e = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
if a.shape != e.shape:
    sys.exit(f"shape {a.shape} vs {e.shape}")
err = np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30)
if not err <= 1e-5:
    sys.exit(f"relative L2 error {err:.3g}")
PYEOF
    done
done <<< "$cases"

# a wrong offset shape is refused with a message, not read past its end
D=$T/v2_3x3
"$PY" -c "import numpy as np; a = np.load('$D/offset.npy'); np.save('$D/offset.npy', a[:, :-2])"
if "$TOOL" "$D" 1 1 1 1 2>"$T/err"; then ko "short offset accepted"
elif grep -q "offset is" "$T/err"; then ok; else ko "short offset: message was: $(cat "$T/err")"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
