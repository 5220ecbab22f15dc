#!/usr/bin/env bash
# test_npy_numpy.sh: data/npy.c against numpy itself, through build/tests/npy_tool: the
# .npy numpy writes comes back byte for byte from ours (and from our .npy.zst), numpy
# loads what we write, streams from the zstd tool (no content size, several frames) are
# read, numpy's files we refuse are refused by name, and the half conversions equal
# numpy's astype on all 65536 halves and on millions of floats. Without numpy it prints
# SKIP and "0 passed, 0 failed": the C checks of tests/unit_npy.c never depend on it.
# Usage: tests/test_npy_numpy.sh NPY_TOOL   (prints only failures and the summary line)
set -u
# Debian's Python: scripts/setup-deps installs its numpy and Pillow
PY=${AVPS_PYTHON:-/usr/bin/python3}
TOOL=$1
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "SKIP: $PY has no numpy (scripts/setup-deps installs python3-numpy)"
    echo "0 passed, 0 failed"
    exit 0
fi
T=$(mktemp -d /tmp/avps_npy_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else ko "$what"; fi; }
has_zstd=0
command -v zstd >/dev/null 2>&1 && has_zstd=1

# ---- arrays of every dtype and many shapes, saved by numpy (version 1.0, 2.0, 3.0)
"$PY" - "$T" <<'EOF' || ko "numpy could not write the arrays"
import sys, numpy as np
from numpy.lib import format as fmt
out = sys.argv[1]
rng = np.random.default_rng(5)
shapes = [(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 4, 5), (133, 12, 16), (1, 123456789012, 0), (100000, 2), (2, 3, 1, 4, 3)]
k = 0
for dt in ["<f2", "<f4", "|u1", "<u2", "<i4", "<f8"]:
    size = np.dtype(dt).itemsize
    for shape in shapes:
        bits = rng.integers(0, 256, size=int(np.prod(shape)) * size, dtype=np.uint8)
        a = bits.view(dt).reshape(shape)  # every bit pattern, NaNs and infs included
        np.save(f"{out}/a{k}.npy", a)
        k += 1
a = rng.standard_normal((3, 5)).astype("<f4")
np.save(f"{out}/v1.npy", a)
for v in [(2, 0), (3, 0)]:
    with open(f"{out}/v{v[0]}.npy", "wb") as f:
        fmt.write_array(f, a, version=v)
np.save(f"{out}/bad_big_endian.npy", a.astype(">f4"))
np.save(f"{out}/bad_fortran.npy", np.asfortranarray(a))
np.save(f"{out}/bad_i8.npy", a.astype("<i8"))
np.save(f"{out}/bad_bool.npy", a > 0)
np.save(f"{out}/bad_6d.npy", np.zeros((1, 2, 1, 2, 1, 1), dtype="<f2"))
EOF

# ---- ours, byte for byte: .npy -> .npy.zst -> .npy
for a in "$T"/a*.npy; do
    b=${a%.npy}.b.npy.zst c=${a%.npy}.c.npy
    if "$TOOL" copy "$a" "$b" && "$TOOL" copy "$b" "$c"; then
        check "$(basename "$a"): same bytes as numpy after .npy.zst and back" cmp -s "$a" "$c"
        [ $has_zstd = 1 ] && check "$(basename "$a"): zstd -d of ours" sh -c "zstd -q -d -c '$b' | cmp -s - '$a'"
    else
        ko "$(basename "$a"): copy failed"
    fi
done
"$PY" - "$T" <<'EOF' && ok || ko "numpy loads what we wrote"
import sys, glob, numpy as np
for c in glob.glob(sys.argv[1] + "/a*.c.npy"):
    a, b = np.load(c.replace(".c.npy", ".npy")), np.load(c)
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), c
EOF

# ---- versions 2.0 and 3.0 read, written back as 1.0
for v in 2 3; do
    if "$TOOL" copy "$T/v$v.npy" "$T/v$v.back.npy"; then
        check "version $v.0 read, written as numpy writes 1.0" cmp -s "$T/v1.npy" "$T/v$v.back.npy"
    else
        ko "version $v.0 refused"
    fi
done

# ---- streams of the zstd tool: from a pipe (no content size), several frames, level 19
if [ $has_zstd = 1 ]; then
    a=$T/a6.npy # 133 x 12 x 16 halves
    zstd -q -c <"$a" >"$T/pipe.npy.zst"
    (head -c 100 "$a" | zstd -q -c; tail -c +101 "$a" | zstd -q -19 -c) >"$T/frames.npy.zst"
    zstd -q --no-check -c <"$a" >"$T/nocheck.npy.zst"
    for z in pipe frames nocheck; do
        if "$TOOL" copy "$T/$z.npy.zst" "$T/$z.npy"; then
            check "zstd stream '$z'" cmp -s "$a" "$T/$z.npy"
        else
            ko "zstd stream '$z' refused"
        fi
    done
fi

# ---- numpy's files that avps refuses, by name, leaving nothing behind
refused() { # NAME WORDS
    local f=$T/bad_$1.npy
    if "$TOOL" copy "$f" "$T/out_$1.npy.zst" 2>"$T/err.txt"; then ko "bad_$1 accepted"; return; fi
    check "bad_$1: message names the file and says '$2'" \
        sh -c 'grep -q -F "$1: .npy header: " "$3" && grep -q -F "$2" "$3"' _ "$f" "$2" "$T/err.txt"
    check "bad_$1: nothing written" test ! -e "$T/out_$1.npy.zst"
}
refused big_endian "big-endian dtype '>f4'"
refused fortran "fortran_order True"
refused i8 "unsupported dtype '<i8'"
refused bool "unsupported dtype '|b1'"
refused 6d "more than 5 dimensions"

# ---- half floats: all 65536 halves, then floats of every kind, against numpy's astype
"$TOOL" halves "$T/halves.npy" || ko "npy_tool halves"
"$PY" - "$T" <<'EOF' && ok || ko "float_from_half equals numpy on all 65536 halves"
import sys, numpy as np
ours = np.load(sys.argv[1] + "/halves.npy")
ref = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
nan = np.isnan(ref)
assert (np.isnan(ours) == nan).all()
assert (ours.view(np.uint32)[~nan] == ref.view(np.uint32)[~nan]).all()
assert (np.signbit(ours) == np.signbit(ref)).all()
EOF
"$PY" - "$T" <<'EOF' || ko "numpy could not write the floats"
import sys, numpy as np
rng = np.random.default_rng(11)
halves = np.arange(0x7c00, dtype=np.uint16).view(np.float16).astype(np.float64)
mid = ((halves[:-1] + halves[1:]) / 2).astype(np.float32)  # exact: ties
near = np.concatenate([mid, np.nextafter(mid, 0), np.nextafter(mid, np.inf)])
special = np.array([0.0, 65504, 65519.996, 65520, 1e6, np.inf, np.nan, 2.0**-25, 2.0**-24, 1e-45], dtype=np.float32)
randbits = rng.integers(0, 2**32, size=4_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
small = rng.uniform(-2.0**-13, 2.0**-13, size=500_000).astype(np.float32)  # subnormal halves
f = np.concatenate([near, -near, special, -special, randbits, small])
np.save(sys.argv[1] + "/floats.npy", f)
EOF
"$TOOL" to-half "$T/floats.npy" "$T/floats_half.npy" || ko "npy_tool to-half"
"$PY" - "$T" <<'EOF' && ok || ko "half_from_float equals numpy's astype(np.float16)"
import sys, numpy as np
f = np.load(sys.argv[1] + "/floats.npy")
ours = np.load(sys.argv[1] + "/floats_half.npy")
with np.errstate(over="ignore", invalid="ignore"):
    ref = f.astype(np.float16).view(np.uint16)
nan = np.isnan(f)
assert ours.dtype == np.uint16 and ours.shape == f.shape
bad = np.flatnonzero(ours[~nan] != ref[~nan])
assert bad.size == 0, [(hex(f[~nan].view(np.uint32)[i]), hex(ours[~nan][i]), hex(ref[~nan][i])) for i in bad[:5]]
assert (np.isnan(ours.view(np.float16)[nan])).all() and (ours[nan] >> 15 == ref[nan] >> 15).all()
EOF

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
