#!/usr/bin/env bash
# test_cli_combine.sh: `avps combine` end to end: the same segments as panopticapi's
# combiner on the reference cases (compared as category + set of pixels, the reference's
# ids being random), the same bytes for any number of ranks and threads, network ends
# with thresholds of their own, and bad input refused with a message naming the file,
# the image and the item, leaving nothing on disk.
# Usage: tests/test_cli_combine.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/tests/fixtures/combine
SHARED=${AVPS_SHARED:-$ROOT/../shared}/reference
CMP=$ROOT/build/tests/pan_compare
T=$(mktemp -d /tmp/avps_combine_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else ko "$what"; fi; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

combine() { # CASE_DIR OUT_JSON RUNNER... [-- EXTRA OPTIONS...]
    local d=$1 out=$2; shift 2
    local runner=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do runner+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    "${runner[@]}" combine --semantic "$d/semantic.json" --instances "$d/instances.json" --images "$d/images.json" \
        --categories "$d/categories.json" --out-json "$out" "$@" >/dev/null
}
# The thresholds the reference used, from its expected.json.
param() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" "$1/expected.json" | head -1; }
ref_params() {
    echo --confidence-thr "$(param "$1" confidence_thr)" --overlap-thr "$(param "$1" overlap_thr)" \
        --stuff-area-limit "$(param "$1" stuff_area_limit | sed 's/\.0*$//')"
}

# ---- parity: every synthetic case, and the reference folder when it is there
cases=("$FIX"/*/)
for d in "$SHARED"/combine/*/; do [ -f "$d/expected.json" ] && cases+=("$d"); done
for d in "${cases[@]}"; do
    d=${d%/}; name=$(basename "$(dirname "$d")")_$(basename "$d")
    # shellcheck disable=SC2046
    if combine "$d" "$T/$name/pan.json" "$AVPS" -- $(ref_params "$d"); then
        check "parity $name" "$CMP" "$d/expected.json" "$d/expected" "$T/$name/pan.json" "$T/$name/pan"
    else
        ko "combine $name exited non-zero"
    fi
done
# The checker can fail: other thresholds give other segments.
d=$FIX/synthetic_0
combine "$d" "$T/other/pan.json" "$AVPS" -- --overlap-thr 0.3 || ko "combine --overlap-thr 0.3"
"$CMP" "$d/expected.json" "$d/expected" "$T/other/pan.json" "$T/other/pan" >/dev/null &&
    ko "pan_compare accepted the result of another overlap threshold" || ok
combine "$d" "$T/small/pan.json" "$AVPS" -- --stuff-area-limit 0 || ko "combine --stuff-area-limit 0"
"$CMP" "$d/expected.json" "$d/expected" "$T/small/pan.json" "$T/small/pan" >/dev/null &&
    ko "pan_compare accepted the result of another stuff area limit" || ok

# ---- viewable PNGs: ids are colours as panopticapi's IdGenerator picks them; the checker can fail
if /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null; then
    for d in "$FIX"/*/; do
        n=colors_$(basename "$d")
        combine "${d%/}" "$T/$n/pan.json" "$AVPS" || ko "combine $n"
        out=$(/usr/bin/python3 "$ROOT/tests/pan_colors.py" "$T/$n/pan.json" "$T/$n/pan") && ok || ko "$n: $out"
    done
    /usr/bin/python3 -c 'import json, sys
cats = lambda p: {c["id"]: c["color"] for c in (lambda d: d["categories"] if isinstance(d, dict) else d)(json.load(open(p)))}
sys.exit(cats(sys.argv[1]) != cats(sys.argv[2]))' "${d%/}/categories.json" "$T/$n/pan.json" && ok ||
        ko "$n: output categories do not keep the colours of the input's"
    sed 's/"id": \([0-9]*\), "category_id"/"id": 1\1, "category_id"/' "$T/$n/pan.json" >"$T/$n/bad.json"
    /usr/bin/python3 "$ROOT/tests/pan_colors.py" "$T/$n/bad.json" "$T/$n/pan" >/dev/null &&
        ko "pan_colors accepted ids that are not the PNG's" || ok
else
    echo "SKIP: /usr/bin/python3 has no numpy or Pillow: colours of the PNGs"; ko "colours not checked"
fi

# ---- the same bytes for any number of ranks and threads (JSON and every PNG)
for d in "$FIX"/*/; do
    d=${d%/}; name=$(basename "$d")
    combine "$d" "$T/det_$name/t1/pan.json" "$AVPS" -- --threads 1 || ko "threads 1 $name"
    combine "$d" "$T/det_$name/t2/pan.json" "$AVPS" -- --threads 2 || ko "threads 2 $name"
    combine "$d" "$T/det_$name/np2/pan.json" $MPIRUN 2 "$AVPS" -- --threads 2 || ko "mpirun -np 2 $name"
    combine "$d" "$T/det_$name/np3/pan.json" $MPIRUN 3 "$AVPS" || ko "mpirun -np 3 $name"
    for run in t2 np2 np3; do
        check "$name: $run differs from one thread" diff -r -q "$T/det_$name/t1" "$T/det_$name/$run"
    done
done
check "folders default to the JSON path" test -f "$T/det_synthetic_1/t1/pan/000000002004.png"
grep -q '"file_name": "000000002004.png", "segments_info": \[\]' "$T/det_synthetic_1/t1/pan.json" &&
    ok || ko "an image without segments is written with an empty segments_info"

# ---- network ends: a second copy of the instances adds nothing (each copy loses to
# the first at overlap 1), whatever the ends' thresholds; a threshold above every
# score silences an end.
d=$FIX/synthetic_1
base=$T/det_synthetic_1/t1
ends() { # NAME OPTIONS...
    local name=$1; shift
    if "$AVPS" combine --semantic "$d/semantic.json" --instances "$d/instances.json" --instances "$d/instances.json" \
        --images "$d/images.json" --categories "$d/categories.json" --out-json "$T/$name/pan.json" "$@" >/dev/null; then
        check "two ends ($name) differ from one" diff -r -q "$base" "$T/$name"
    else
        ko "two ends ($name) exited non-zero"
    fi
}
ends ends_both
ends ends_second_off --confidence-thr 1=2
ends ends_first_off --confidence-thr 0=2 --confidence-thr 1=0.5
combine "$d" "$T/silent/pan.json" "$AVPS" -- --confidence-thr 0=2 || ko "--confidence-thr 0=2"
things=$(grep -o '"id": [0-9]*, "name": "[^"]*", "isthing": 1' "$d/categories.json" | cut -d' ' -f2 | tr -d , |
    sed 's/.*/"category_id": &,/')
grep -q '"category_id": ' "$T/silent/pan.json" && ! grep -qF "$things" "$T/silent/pan.json" &&
    grep -qF "$things" "$base/pan.json" && ok || ko "end 0 silenced: thing segments remain"

# ---- bad input: non-zero exit, one message naming file, image and item, nothing written
expect_error() { # NAME SEMANTIC INSTANCES IMAGES RUNNER... -- PATTERN...
    local name=$1 sem=$2 inst=$3 imgs=$4; shift 4
    local runner=()
    while [ "$1" != "--" ]; do runner+=("$1"); shift; done
    shift
    rm -rf "$T/err"; mkdir -p "$T/err"
    if "${runner[@]}" combine --semantic "$sem" --instances "$inst" --images "$imgs" \
        --categories "$d/categories.json" --out-json "$T/err/pan.json" >/dev/null 2>"$T/err.txt"; then
        ko "$name: exited 0"; return
    fi
    local p
    for p in "$@"; do
        grep -qF -- "$p" "$T/err.txt" || { ko "$name: message lacks '$p': $(head -c 400 "$T/err.txt")"; return; }
    done
    [ "$(grep -c 'avps: error' "$T/err.txt")" = 1 ] || { ko "$name: not exactly one error message"; return; }
    [ -z "$(ls -A "$T/err")" ] || { ko "$name: files were written: $(ls "$T/err")"; return; }
    ok
}
d=$FIX/synthetic_0
S=$d/semantic.json I=$d/instances.json M=$d/images.json
# Variants: the first result of a file (or one of a given image) edited.
sed '0,/"category_id": 2,/s//"category_id": 999,/' "$I" > "$T/unknown_cat.json"
expect_error "unknown category in instances" "$S" "$T/unknown_cat.json" "$M" "$AVPS" -- \
    "unknown_cat.json: image 2000: result 0: category 999 is not among the categories"
sed '0,/"category_id": 95,/s//"category_id": 7777,/' "$S" > "$T/unknown_sem.json"
expect_error "unknown category in semantic" "$T/unknown_sem.json" "$I" "$M" "$AVPS" -- \
    "unknown_sem.json: image 2000: result 0: category 7777"
sed '0,/"image_id": 2000,/s//"image_id": 424242,/' "$I" > "$T/no_image.json"
expect_error "image not in images" "$S" "$T/no_image.json" "$M" "$AVPS" -- \
    "no_image.json: result 0: image 424242 is not among the images of $M"
sed '0,/"counts": "[^"]*"/s//"counts": "~~~"/' "$S" > "$T/bad_rle.json"
expect_error "malformed RLE" "$T/bad_rle.json" "$I" "$M" "$AVPS" -- \
    "bad_rle.json: image 2000: result 0: the segmentation has a malformed \"counts\" string"
sed '0,/"size": \[143, 46\]/s//"size": [143, 47]/' "$I" > "$T/bad_size.json"
expect_error "mask size differs from the image" "$S" "$T/bad_size.json" "$M" "$AVPS" -- \
    "bad_size.json: image 2000: result 0: the segmentation has a \"size\" that differs"
sed '0,/"score": [0-9.]*,/s///' "$I" > "$T/no_score.json"
expect_error "instance without a score" "$S" "$T/no_score.json" "$M" "$AVPS" -- \
    "no_score.json: image 2000: result 0: \"score\" is missing"
head -c 700 "$S" > "$T/trunc.json"
expect_error "truncated semantic results" "$T/trunc.json" "$I" "$M" "$AVPS" -- "trunc.json: result" "malformed JSON"
sed 's/"height": 143/"height": 144/' "$M" > "$T/images_h.json"
expect_error "images file with another height" "$S" "$I" "$T/images_h.json" "$AVPS" -- \
    "semantic.json: image 2000: result 0: the segmentation has a \"size\" that differs"
sed 's/000000002001.jpg/000000002000.jpg/' "$M" > "$T/images_dup.json"
expect_error "two images with one PNG name" "$S" "$I" "$T/images_dup.json" "$AVPS" -- \
    "images_dup.json: two images would write 000000002000.png"
expect_error "missing file" "$T/none.json" "$I" "$M" "$AVPS" -- "none.json: cannot open"
# Images 2003 and 2002 are items 3 and 2: rank 1 of 2, rank 2 of 3, not the root.
sed 's/\("image_id": 2003, "category_id": \)[0-9]*/\14242/' "$I" > "$T/late_cat.json"
expect_error "unknown category (mpirun -np 2)" "$S" "$T/late_cat.json" "$M" $MPIRUN 2 "$AVPS" -- \
    "late_cat.json: image 2003: result" "category 4242"
sed '0,/"image_id": 2002, "category_id": \([0-9]*\), "segmentation": {"size": \[228, 108\], "counts": "[^"]*"/s//"image_id": 2002, "category_id": \1, "segmentation": {"size": [228, 108], "counts": "0"/' \
    "$S" > "$T/late_rle.json"
expect_error "runs that do not add up (mpirun -np 3)" "$T/late_rle.json" "$I" "$M" $MPIRUN 3 "$AVPS" -- \
    "late_rle.json: image 2002: result" "malformed \"counts\" string"

# ---- the command line
"$AVPS" combine --help >/dev/null && ok || ko "--help exits 0"
"$AVPS" combine --semantic "$S" >/dev/null 2>"$T/usage.txt" && ko "missing options accepted" ||
    { grep -q "are required" "$T/usage.txt" && ok || ko "missing option message"; }
"$AVPS" combine --semantic "$S" --instances "$I" --images "$M" --categories "$d/categories.json" \
    --out-json "$T/x.json" --confidence-thr 8=0.5 >/dev/null 2>"$T/usage.txt" && ko "end 8 accepted" ||
    { grep -q "0..7" "$T/usage.txt" && ok || ko "end out of range: $(cat "$T/usage.txt")"; }
"$AVPS" combine --semantic "$S" --instances "$I" --images "$M" --categories "$d/categories.json" \
    --out-json "$T/x.json" --overlap-thr half >/dev/null 2>&1 && ko "--overlap-thr half accepted" || ok
"$AVPS" combine --bogus 1 >/dev/null 2>&1 && ko "unknown option accepted" || ok
[ -e "$T/x.json" ] && ko "a refused command line wrote output" || ok

# a category colour must be three integers 0..255
mkdir -p "$T/badcolor"
sed '0,/"color": \[[0-9]*/s//"color": [300/' "$FIX/synthetic_0/categories.json" >"$T/badcolor/categories.json"
d=$T/badcolor expect_error "bad colour" "$S" "$I" "$M" "$AVPS" -- "$T/badcolor/categories.json" "category 1" \
    '"color"[0] is not an integer 0..255'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
