#!/usr/bin/env bash
# test_polygon_parity.sh: polygons outside their image. rle_from_polygon against
# pycocotools' frPyObjects on random polygons reaching past every side, on COCO-size ones
# and on the 0.1-pixel grid (the unit test binary checks the cases tests/poly_cases.py
# writes), and the 97-byte results file of
# issue 12 (a triangle of coordinates 1e8 on a 1x1 image) evaluated under a 1 GB memory
# limit. SKIPs the pycocotools half when the venv cannot be made.
# Usage: tests/test_polygon_parity.sh UNIT_RLE_BINARY AVPS_BINARY
set -u
UNIT=$1 AVPS=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/avps_poly_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }

# ---- bounded memory: sampling the triangle's edges whole would need 6 GB
cat >"$T/gt.json" <<'J'
{"images":[{"id":1,"width":1,"height":1}],"categories":[{"id":1,"name":"a"}],
 "annotations":[{"id":1,"image_id":1,"category_id":1,"iscrowd":0,"area":1,
 "bbox":[0,0,1,1],"segmentation":[[0,0,1,0,1,1,0,1]]}]}
J
printf '%s' '[{"image_id":1,"category_id":1,"score":0.9,"segmentation":[[1e8,1e8,-1e8,1e8,0,-1e8]]}]' >"$T/dt.json"
if (ulimit -v 1000000; "$AVPS" eval ap --gt "$T/gt.json" --dt "$T/dt.json" --json "$T/ap.json" >"$T/out" 2>&1); then
    if grep -q '"AP"' "$T/ap.json" 2>/dev/null; then ok; else ko "far polygon: no AP in the report"; fi
else
    ko "far polygon: eval ap failed under a 1 GB limit: $(tail -1 "$T/out")"
fi

# ---- beyond COCO's int: refused, with the image and the result named, and no report
printf '%s' '[{"image_id":1,"category_id":1,"score":0.9,"segmentation":[[3e8,0,0,1,1,1]]}]' >"$T/big.json"
if "$AVPS" eval ap --gt "$T/gt.json" --dt "$T/big.json" --json "$T/big_ap.json" >"$T/out" 2>&1; then
    ko "coordinate 3e8 accepted"
elif grep -q 'big.json: image 1: result 0: .*not finite or beyond' "$T/out" && [ ! -e "$T/big_ap.json" ]; then ok
else ko "coordinate 3e8: $(tail -1 "$T/out")"; fi

# ---- parity with pycocotools
if ! PY=$("$ROOT/scripts/setup-venv") || ! "$PY" -c 'import pycocotools' 2>/dev/null; then
    echo "SKIP: no pycocotools (scripts/setup-venv could not provide it)"
else
    # seed:kind; kinds in tests/poly_cases.py
    for run in 1:outside 2:outside 3:outside 4:coco 5:coco 6:grid 7:grid; do
        seed=${run%%:*} kind=${run#*:}
        if ! "$PY" "$ROOT/tests/poly_cases.py" "$seed" 400 "$kind" >"$T/cases$seed.txt"; then
            ko "poly_cases.py seed $seed $kind"; continue
        fi
        if "$UNIT" "$T/cases$seed.txt" >"$T/unit$seed.out" 2>&1; then ok
        else ko "seed $seed ($kind): $(grep -v passed "$T/unit$seed.out" | head -3)"; fi
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
