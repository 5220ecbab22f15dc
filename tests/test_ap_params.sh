#!/usr/bin/env bash
# test_ap_params.sh: `avps eval ap` with COCOeval's Params (--img-ids --cat-ids --max-dets
# --area-rng --iou-thrs --rec-thrs --no-use-cats) and --eval-out, against pycocotools on
# the reference cases: every parameter alone and a few together, stats, per-class rows and
# the precision/recall/scores arrays equal exactly (tests/ap_params_compare.py); the same
# bytes under mpirun -np 3; bad values refused with the flag named and nothing written.
# Usage: tests/test_ap_params.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/tests/fixtures
SHARED=${AVPS_SHARED:-$ROOT/../shared}/reference
T=$(mktemp -d /tmp/avps_app_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cases=("$FIX"/ap/*/)
[ -d "$SHARED/ap/coco_val2014_100" ] && cases+=("$SHARED/ap/coco_val2014_100/")

# ids of a case's ground truth: every other image, every other category (reversed, so
# that sorting and the order --no-use-cats keeps are both exercised)
ids() { # GT WHAT
    /usr/bin/python3 -c 'import json, sys
g = json.load(open(sys.argv[1]))
if sys.argv[2] == "img": print(",".join(str(i["id"]) for i in sorted(g["images"], key=lambda i: i["id"])[::2]))
else: print(",".join(str(c["id"]) for c in sorted(g["categories"], key=lambda c: c["id"])[::-2]))' "$1" "$2"
}

# ---- runs: one line of the manifest each
: > "$T/manifest"
run_case() { # NAME GT DT FLAG...
    local name=$1 gt=$2 dt=$3; shift 3
    local out=$T/$name
    if "$AVPS" eval ap --gt "$gt" --dt "$dt" --json "$out.json" --eval-out "$out.npz" "$@" >"$out.txt" 2>"$out.err"; then
        printf '%s\t%s\t%s\t%s\t%s\t%s' "$name" "$gt" "$dt" "$out.json" "$out.npz" "$out.txt" >> "$T/manifest"
        printf '\t%s' "$@" >> "$T/manifest"
        printf '\n' >> "$T/manifest"
    else
        ko "$name: eval ap $* exited non-zero: $(head -c 300 "$out.err")"
    fi
}
for d in "${cases[@]}"; do
    d=${d%/}; c=$(basename "$d"); gt=$d/gt.json; dt=$d/dt.json
    imgs=$(ids "$gt" img); cats=$(ids "$gt" cat)
    run_case "$c.default" "$gt" "$dt"
    run_case "$c.img-ids" "$gt" "$dt" --img-ids "$imgs"
    run_case "$c.cat-ids" "$gt" "$dt" --cat-ids "$cats"
    run_case "$c.max-dets" "$gt" "$dt" --max-dets 2,5,50
    run_case "$c.max-dets4" "$gt" "$dt" --max-dets 100,1,10,300
    run_case "$c.area-rng" "$gt" "$dt" --area-rng all:0:1e10,small:0:2000,medium:2000:8000,large:8000:inf
    run_case "$c.area-lbl" "$gt" "$dt" --area-rng tiny:0:256,all:0:1e10,huge:4096:1e10
    run_case "$c.iou-thrs" "$gt" "$dt" --iou-thrs 0.5,0.75,0.6,0.9,1
    run_case "$c.iou-no75" "$gt" "$dt" --iou-thrs 0.3,0.5,0.7
    run_case "$c.rec-thrs" "$gt" "$dt" --rec-thrs 0,0.25,0.5,0.75,1
    run_case "$c.rec-unsorted" "$gt" "$dt" --rec-thrs 1,0.5,0,0.9,0.1
    run_case "$c.no-use-cats" "$gt" "$dt" --no-use-cats
    run_case "$c.no-use-cats-ids" "$gt" "$dt" --no-use-cats --cat-ids "$cats"
    run_case "$c.combined" "$gt" "$dt" --img-ids "$imgs" --cat-ids "$cats" --max-dets 1,5,20 \
        --area-rng all:0:1e10,small:0:900,large:900:1e10 --iou-thrs 0.55,0.75,0.5 --rec-thrs 0,0.1,0.5,0.95
    run_case "$c.combined-nuc" "$gt" "$dt" --no-use-cats --max-dets 1,10,100,1000 --iou-thrs 0.5,0.75 \
        --area-rng all:0:1e10,medium:100:5000
    run_case "$c.bbox" "$gt" "$dt" --iou-type bbox --max-dets 1,3,100 --iou-thrs 0.5,0.75,0.85
done

# ---- parity with pycocotools
if ! PY=$("$ROOT/scripts/setup-venv") || ! "$PY" -c 'import pycocotools' 2>/dev/null; then
    echo "SKIP: no pycocotools (scripts/setup-venv could not provide it): parity not checked"
else
    "$PY" "$ROOT/tests/ap_params_compare.py" "$T/manifest" > "$T/compare.out" 2>&1
    grep '^FAIL' "$T/compare.out" | head -20
    res=$(tail -1 "$T/compare.out")
    if [[ $res =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
        passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
        runs=$(wc -l < "$T/manifest")
        [ $((BASH_REMATCH[1] + BASH_REMATCH[2])) = "$runs" ] || ko "compared $((BASH_REMATCH[1] + BASH_REMATCH[2])) of $runs runs"
    else
        ko "ap_params_compare.py: $(tail -3 "$T/compare.out")"
    fi
fi

# ---- the same bytes for any number of ranks
d="$FIX/ap/synthetic_1"
flags=(--img-ids "$(ids "$d/gt.json" img)" --max-dets 1,5,20 --iou-thrs 0.5,0.7 --area-rng all:0:1e10,small:0:900)
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" "${flags[@]}" --json "$T/one.json" --eval-out "$T/one.npz" \
    --threads 1 >/dev/null || ko "threads 1"
$MPIRUN 3 "$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" "${flags[@]}" --json "$T/np3.json" \
    --eval-out "$T/np3.npz" --threads 2 >/dev/null || ko "mpirun -np 3"
cmp -s "$T/one.json" "$T/np3.json" && cmp -s "$T/one.npz" "$T/np3.npz" && ok || ko "mpirun -np 3: json or npz differs"

# ---- bad values: non-zero exit, the flag and the value named, nothing written
gt="$FIX/ap/synthetic_0/gt.json"; dt="$FIX/ap/synthetic_0/dt.json"
refused() { # PATTERN FLAG...
    local pat=$1; shift
    rm -f "$T/bad.json" "$T/bad.npz"
    if "$AVPS" eval ap --gt "$gt" --dt "$dt" --json "$T/bad.json" --eval-out "$T/bad.npz" "$@" >/dev/null 2>"$T/bad.txt"; then
        ko "$* accepted"; return; fi
    grep -qF -- "$pat" "$T/bad.txt" || { ko "$*: message lacks '$pat': $(head -c 300 "$T/bad.txt")"; return; }
    [ -e "$T/bad.json" ] || [ -e "$T/bad.npz" ] && { ko "$*: a file was written"; return; }
    ok
}
refused "--iou-thrs: 'nan' is not a number" --iou-thrs 0.5,nan
refused "--iou-thrs: 1.5 is outside [0, 1]" --iou-thrs 0.5,1.5
refused "--iou-thrs: 0.5 is given twice" --iou-thrs 0.5,0.6,0.5
refused "--iou-thrs: item 2 of '0.5,,0.6' is empty" --iou-thrs 0.5,,0.6
refused "--iou-thrs: 33 thresholds, at most 32" --iou-thrs "$(seq -s, 0 0.03 0.96)"
refused "--rec-thrs: -0.1 is outside [0, 1]" --rec-thrs 0,-0.1
refused "--rec-thrs: '0.5x' is not a number" --rec-thrs 0.5x
refused "--max-dets: 2 values, at least 3" --max-dets 1,10
refused "--max-dets: '0' is not an integer from 1" --max-dets 0,1,10
refused "--max-dets: 10 is given twice" --max-dets 1,10,10
refused "--area-rng: 'all:0' is not LABEL:LO:HI" --area-rng all:0
refused "--area-rng: range 'small' is empty (5 > 1)" --area-rng all:0:1e10,small:5:1
refused "--area-rng: label 'all' is given twice" --area-rng all:0:1e10,all:0:5
refused "--area-rng: label 'a b' must be" --area-rng "a b:0:1"
refused "--area-rng: 'x' is not a number" --area-rng all:x:1
refused "--cat-ids: category 999999 is not among the ground truth's categories" --cat-ids 1,999999
refused "--cat-ids: 1 is given twice" --cat-ids 1,2,1
refused "--img-ids: image 424242 is not among the ground truth's images" --img-ids 424242
refused "--img-ids: 'abc' is not an integer" --img-ids abc
refused "option --eval-out needs a value" --eval-out
rm -f "$T/bad.json"
"$AVPS" eval ap --gt "$gt" --dt "$dt" --json "$T/bad.json" --eval-out "$T/no/such/dir/x.npz" >/dev/null 2>"$T/bad.txt" &&
    ko "--eval-out into a missing folder accepted" ||
    { grep -qF "x.npz" "$T/bad.txt" && [ ! -e "$T/bad.json" ] && ok || ko "--eval-out into a missing folder: $(cat "$T/bad.txt")"; }

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
