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

# One Python for all the cases, and one for all the comparisons: importing torch costs
# seconds, which per case made most of the suite's time. Each prints a line per case.
gen=$("$PY" - "$T" <<PYEOF 2>&1
import sys, traceback, numpy as np, torch, torchvision.ops as ops
for line in """$cases""".splitlines():
    name, *a = line.split()
    try:
        d = f"{sys.argv[1]}/{name}"
        n, c, h, w, o, kh, kw, s, p, dil, g, v2 = map(int, a[:12])
        sc, seed = float(a[12]), int(a[13])
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
        assert (np.abs(fy - np.round(fy)) > 1e-3).any(), "no tap between pixels"
        assert (np.abs(off.numpy()) > p + 1).any(), "no tap off the map"
        import os; os.makedirs(d)
        for k, v in dict(input=x, weight=wt, bias=b, offset=off, mask=mask, expected=ref).items():
            if v is not None:
                np.save(f"{d}/{k}.npy", v.numpy().astype(np.float32))
        print("made", name)
    except Exception:
        print("not made", name, traceback.format_exc().splitlines()[-1])
PYEOF
)
compared=""
while read -r name n c h w o kh kw s p d g v2 sc seed; do
    printf '%s\n' "$gen" | grep -qx "made $name" || { ko "$name: generator: $(printf '%s\n' "$gen" | tail -1)"; continue; }
    "$TOOL" "$T/$name" $s $p $d $g || { ko "$name: deform_tool failed"; continue; }
    compared="$compared $name"
done <<< "$cases"
# per case, the plain and the BLAS GEMM outputs: a line "ok NAME OUT" or "no NAME: OUT, why"
verdicts=0
while read -r verdict rest; do
    verdicts=$((verdicts + 1))
    case $verdict in ok) ok ;; no) ko "$rest" ;; *) ko "$verdict $rest" ;; esac
done < <("$PY" - "$T" $compared <<'PYEOF' 2>&1
import sys, numpy as np
for name in sys.argv[2:]:
    for out in ("out", "out_blas"):
        d = f"{sys.argv[1]}/{name}"
        try:
            a, e = np.load(f"{d}/{out}.npy").astype(np.float64), np.load(f"{d}/expected.npy").astype(np.float64)
        except Exception as x:
            print(f"no {name} {out}: {x}"); continue
        if a.shape != e.shape:
            print(f"no {name}: {out} differs from torchvision: shape {a.shape} vs {e.shape}"); continue
        err = np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30)
        print(f"ok {name} {out}" if err <= 1e-5 else f"no {name}: {out} differs from torchvision: relative L2 error {err:.3g}")
PYEOF
)
set -- $compared
[ "$verdicts" = $(($# * 2)) ] || ko "the comparison gave $verdicts verdicts for $# cases"

# a wrong offset shape is refused with a message, not read past its end
D=$T/v2_3x3
"$PY" -c "import numpy as np; a = np.load('$D/offset.npy'); np.save('$D/offset.npy', a[:, :-2])"
if "$TOOL" "$D" 1 1 1 1 2>"$T/err"; then ko "short offset accepted"
elif grep -q "offset is" "$T/err"; then ok; else ko "short offset: message was: $(cat "$T/err")"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
