#!/usr/bin/env bash
# test_upsnet_run.sh: configs/native_upsnet.json, whose E-UPS members are native UPSNet
# networks (random weights that scripts/native-upsnet-world makes from the answer keys'
# make_weights.py), runs with `avps run` on 1 rank and under `mpirun -np 2` with the
# same report.json byte for byte; each end's PQ is a number in [0, 1] and E-UPS
# predicted segments (the native heads gave instances and stuff). SKIP without
# ../shared/reference/upsnet.
# Usage: tests/test_upsnet_run.sh AVPS_BINARY [--quick]   (--quick, for the sanitizer
# build: an E-UPS of one member, the ResNet-50, the same checks)
set -u
AVPS=$1
QUICK=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
REF=$ROOT/../shared/reference/upsnet
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="timeout 300 mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# one OpenBLAS thread per process: two ranks of two spinning threads on two cores spend
# most of their time yielding to each other (the GEMMs' results do not depend on it)
export OPENBLAS_NUM_THREADS=1

if [ ! -f "$REF/make_weights.py" ]; then
    echo "SKIP: no answer keys at $REF (shared/reference/upsnet)"
    echo "0 passed, 0 failed"; exit 0
fi
if ! $PY -c "import numpy" 2>/dev/null; then
    echo "SKIP: $PY has no numpy (make_weights.py needs it)"
    echo "0 passed, 0 failed"; exit 0
fi
T=$(mktemp -d /tmp/avps_upsrun_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT

if ! "$ROOT/scripts/native-upsnet-world" "$AVPS" >/dev/null 2>"$T/err"; then
    ko "scripts/native-upsnet-world: $(tail -3 "$T/err")"
    echo "$passed passed, $failed failed"; exit 1
fi
CFG=$ROOT/configs/native_upsnet.json
if [ "$QUICK" = --quick ]; then # the same config with one member, paths made absolute
    CFG=$T/quick.json
    $PY - "$ROOT/configs/native_upsnet.json" "$CFG" <<'PYEOF' || ko "--quick: could not write the config"
import json, os, sys
src, dst = sys.argv[1:3]
c, base = json.load(open(src)), os.path.dirname(os.path.abspath(src))
fix = lambda p: os.path.normpath(os.path.join(base, p))
for d in c["datasets"].values():
    d["gt_json"] = fix(d["gt_json"])
for h in (h for h in c["heads"] if h["backend"] == "native"):
    h["store"], h["profile"] = fix(h["store"]), fix(h["profile"])
c["ensemble"]["members"], c["ensemble"]["weights"] = c["ensemble"]["members"][:1], [1]
c["out"] = fix(c["out"])
json.dump(c, open(dst, "w"))
PYEOF
    [ -f "$CFG" ] || { echo "$passed passed, $failed failed"; exit 1; }
fi

cd "$T" || exit 1
"$AVPS" run "$CFG" --out r1 --threads 1 --quiet 2>"$T/err1" || ko "avps run, 1 rank: $(tail -3 "$T/err1")"
$MPIRUN 2 "$AVPS" run "$CFG" --out n2 --threads 1 --quiet >/dev/null 2>"$T/err2" ||
    ko "mpirun -np 2 avps run: $(tail -3 "$T/err2")"
[ -s r1/report.json ] && cmp -s r1/report.json n2/report.json && ok ||
    ko "report.json differs between 1 and 2 ranks: $(diff r1/report.json n2/report.json 2>&1 | head -4)"
$PY - r1/report.json "$CFG" 2>"$T/err" <<'PYEOF' && ok || ko "report.json: PQ or E-UPS's segments: $(tail -1 "$T/err")"
import json, math, sys
r, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert r["images"] == 2, r["images"]
assert [m["name"] for m in r["heads"]["e_ups"]] == c["ensemble"]["members"], r["heads"]
natives = {h["name"] for h in c["heads"] if h["backend"] == "native"}
assert set(c["ensemble"]["members"]) <= natives, "E-UPS members are not native heads"
for end in ("e_ups", "lwl_htc", "fusion"):
    for part in ("All", "Things", "Stuff"):
        pq = r["ends"][end][part]["pq"]
        assert isinstance(pq, (int, float)) and math.isfinite(pq) and 0 <= pq <= 1, (end, part, pq)
# the native members gave segments: E-UPS's matched plus unmatched predictions
pc = r["ends"]["e_ups"]["per_class"].values()
assert sum(x["tp"] + x["fp"] for x in pc) > 0, "E-UPS predicted nothing"
PYEOF

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
