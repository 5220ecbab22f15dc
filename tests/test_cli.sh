#!/usr/bin/env bash
# test_cli.sh: bin/avps end to end: parity with panopticapi on the reference cases,
# byte-identical reports for any number of threads and ranks, and every bad input
# refused with a message naming the file, the image and the segment.
# Usage: tests/test_cli.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/tests/fixtures
SHARED=${AVPS_SHARED:-$ROOT/../shared}/reference
CMP=$ROOT/build/tests/json_compare
T=$(mktemp -d /tmp/avps_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else ko "$what"; fi; }
# mpirun as root, more ranks than cores; one core per rank is too few for threads
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

eval_pq() { # CASE_DIR OUT THREADS RUNNER...   (THREADS "" for the default; GT: the ground truth's JSON name)
    local d=$1 out=$2 threads=$3; shift 3
    "$@" eval pq --gt-json "$d/${GT:-gt.json}" --pred-json "$d/pred.json" --json "$out" ${threads:+--threads $threads} >/dev/null
}

# ---- parity: every synthetic case, and the COCO sample when ../shared is there
cases=("$FIX"/pq/*/)
[ -d "$SHARED/pq/coco_sample" ] && cases+=("$SHARED/pq/coco_sample/")
for d in "${cases[@]}"; do
    d=${d%/}; name=$(basename "$d")
    if eval_pq "$d" "$T/$name.json" "" "$AVPS"; then
        check "parity $name" "$CMP" "$d/expected.json" "$T/$name.json"
    else
        ko "eval pq $name exited non-zero"
    fi
done

# ---- determinism: one report for every number of threads and ranks
"$AVPS" synth --out "$T/syn" --images 23 --heldout 2 --size 96x64 --seed 7 --pred >/dev/null || ko "synth"
GT=val.json eval_pq "$T/syn" "$T/t1.json" 1 "$AVPS" || ko "eval threads 1"
GT=val.json eval_pq "$T/syn" "$T/t2.json" 2 "$AVPS" || ko "eval threads 2"
check "threads 1 vs 2 byte-identical" cmp -s "$T/t1.json" "$T/t2.json"
GT=val.json eval_pq "$T/syn" "$T/np3.json" 2 $MPIRUN 3 "$AVPS" || ko "mpirun -np 3 eval"
check "mpirun -np 3 byte-identical" cmp -s "$T/t1.json" "$T/np3.json"
eval_pq "$FIX/pq/synthetic_0" "$T/np3s.json" "" $MPIRUN 3 "$AVPS" || ko "mpirun -np 3 synthetic_0"
check "mpirun -np 3 parity synthetic_0" "$CMP" "$FIX/pq/synthetic_0/expected.json" "$T/np3s.json"
$MPIRUN 2 "$AVPS" synth --out "$T/syn2" --images 23 --heldout 2 --size 96x64 --seed 7 --pred >/dev/null || ko "mpirun synth"
check "synth: same files under mpirun -np 2" diff -r -q "$T/syn" "$T/syn2"
check "synth: folders default to the JSON path" test -f "$T/syn/val/000000000001.png"

# ---- bad input: non-zero exit, the message names file, image (and segment), no report
expect_error() { # NAME RUNNER... -- CASE_DIR PATTERN...
    local name=$1; shift
    local runner=()
    while [ "$1" != "--" ]; do runner+=("$1"); shift; done
    shift
    local d=$1; shift
    rm -f "$T/err.json"
    if "${runner[@]}" eval pq --gt-json "$d/gt.json" --pred-json "$d/pred.json" --json "$T/err.json" \
        >/dev/null 2>"$T/err.txt"; then
        ko "$name: exited 0"; return
    fi
    local p
    for p in "$@"; do
        grep -qF -- "$p" "$T/err.txt" || { ko "$name: message lacks '$p': $(head -c 400 "$T/err.txt")"; return; }
    done
    [ "$(grep -c 'avps: error' "$T/err.txt")" = 1 ] || { ko "$name: not exactly one error message"; return; }
    [ -e "$T/err.json" ] && { ko "$name: a report was written"; return; }
    ls "$T"/err.json.tmp* >/dev/null 2>&1 && { ko "$name: a temporary file was left"; return; }
    ok
}
json_num() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$1" | head -1; }
for d in "$FIX"/pq_errors/*/; do
    d=${d%/}; name=$(basename "$d")
    img=$(json_num "$d/expected_error.json" image_id)
    seg=$(json_num "$d/expected_error.json" segment_id)
    pats=("image $img" "pred.json")
    [ -n "$seg" ] && pats+=("segment $seg")
    expect_error "$name" "$AVPS" -- "$d" "${pats[@]}"
    expect_error "$name (mpirun -np 3)" $MPIRUN 3 "$AVPS" -- "$d" "${pats[@]}"
done

# Variants built from a small synthetic set, its evaluation split as gt; the writer puts
# one image per line.
mk() {
    rm -rf "$T/$1"; mkdir "$T/$1"
    cp -r "$T/syn/pred" "$T/syn/pred.json" "$T/$1/"; cp -r "$T/syn/val" "$T/$1/gt"; cp "$T/syn/val.json" "$T/$1/gt.json"
}
first_seg() { grep -o '"segments_info": \[{"id": [0-9]*' "$1" | head -1 | grep -o '[0-9]*$'; }

mk malformed; head -c 500 "$T/syn/pred.json" > "$T/malformed/pred.json"
expect_error "malformed JSON" "$AVPS" -- "$T/malformed" "pred.json: malformed JSON near line"

mk corrupt; head -c 100 "$T/syn/pred/000000000002.png" > "$T/corrupt/pred/000000000002.png"
expect_error "corrupt PNG" "$AVPS" -- "$T/corrupt" "image 2" "000000000002.png"

mk gtdup; seg=$(first_seg "$T/syn/val.json")
sed -i "0,/\"segments_info\": \[{\"id\": $seg,/s//\"segments_info\": [{\"id\": $seg, \"category_id\": 1, \"iscrowd\": 0, \"area\": 1}, {\"id\": $seg,/" "$T/gtdup/gt.json"
expect_error "GT duplicate segment id" "$AVPS" -- "$T/gtdup" "gt.json: image 1: segment $seg appears twice"

mk gtsize; sed -i '0,/"width": 96, "height": 64/s//"width": 95, "height": 64/' "$T/gtsize/gt.json"
expect_error "GT PNG size differs from images[]" "$AVPS" -- "$T/gtsize" "gt.json: image 1:" "95x64"

mk nocat; sed -i '/^"categories": \[/,$d' "$T/nocat/gt.json"; echo '"categories": []}' >> "$T/nocat/gt.json"
expect_error "no categories" "$AVPS" -- "$T/nocat" "gt.json: \"categories\" is missing or empty"

# ---- ground-truth oddities panopticapi accepts: same answers, one warning each
warn_case() { # NAME PATTERN
    if "$AVPS" eval pq --gt-json "$T/$1/gt.json" --pred-json "$T/$1/pred.json" >/dev/null 2>"$T/warn.txt" &&
        grep -qF -- "$2" "$T/warn.txt" && [ "$(grep -c 'warning' "$T/warn.txt")" = 1 ]; then ok; else
        ko "$1: no single warning with '$2': $(head -c 300 "$T/warn.txt")"; fi
}
mk gtarea; seg=$(first_seg "$T/syn/val.json")
sed -i -E "0,/\"id\": $seg, (\"category_id\": [0-9]+, \"iscrowd\": [01]), \"area\": [0-9]+/s//\"id\": $seg, \1, \"area\": 1/" "$T/gtarea/gt.json"
warn_case gtarea "1 ground-truth segments have a JSON area that differs"
grep -qF "first: image 1, segment $seg" "$T/warn.txt" && ok || ko "gtarea: first image and segment not named"
mk gtpngonly; sed -i -E '0,/"segments_info": \[\{[^}]*\}, /s//"segments_info": [/' "$T/gtpngonly/gt.json"
warn_case gtpngonly "are in the PNG but not in segments_info"
mk gtjsononly; sed -i "0,/\"segments_info\": \[/s//\"segments_info\": [{\"id\": 16777215, \"category_id\": 1, \"iscrowd\": 0, \"area\": 5}, /" "$T/gtjsononly/gt.json"
warn_case gtjsononly "first: image 1, segment 16777215"

# ---- the command line
"$AVPS" eval pq --help >/dev/null && ok || ko "--help exits 0"
"$AVPS" eval pq --gt-json x >/dev/null 2>"$T/usage.txt" && ko "missing --pred-json accepted" ||
    { grep -q "required" "$T/usage.txt" && ok || ko "missing option message"; }
"$AVPS" eval pq --bogus 1 >/dev/null 2>&1 && ko "unknown option accepted" || ok
"$AVPS" frobnicate >/dev/null 2>&1 && ko "unknown command accepted" || ok

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
