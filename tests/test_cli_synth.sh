#!/usr/bin/env bash
# test_cli_synth.sh: `avps synth` end to end: the layout it writes, disjoint splits, COCO's
# 133 categories, the same bytes for any number of ranks and threads, crowds and VOID in a
# mid-sized world, eval pq on what it writes, and bad arguments refused.
# Usage: tests/test_cli_synth.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
T=$(mktemp -d /tmp/avps_synth_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else ko "$what"; fi; }
differ() { ! cmp -s "$1" "$2"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The JSON writer puts one image, annotation or category per line.
image_ids() { grep -o '^  {"id": [0-9]*, "file_name"' "$1" | grep -o '[0-9][0-9]*' | sort; }
png_names() { grep -o '"file_name": "[0-9]*\.png"' "$1" | sort; }
categories() { sed -n '/^"categories": \[/,$p' "$1" | grep '"id": '; }
used_category_ids() { grep -o '"category_id": [0-9]*' "$1" | grep -o '[0-9]*$' | sort -u; }
# Lines "image_id void_pixels" from the annotations of a JSON whose images are W x H.
void_pixels() {
    awk -v px="$2" '/"segments_info"/ {
        line = $0; sum = 0; id = line; sub(/^  \{"image_id": /, "", id); sub(/,.*/, "", id)
        while (match(line, /"area": [0-9]+/)) { sum += substr(line, RSTART + 8, RLENGTH - 8); line = substr(line, RSTART + RLENGTH) }
        print id, px - sum }' "$1"
}

# ---- layout and splits: a mid-sized world
W=$T/w
"$AVPS" synth --out "$W" --images 60 --heldout 40 --size 160x120 --seed 3 --pred --threads 2 >/dev/null 2>"$T/w.err" ||
    ko "synth exited non-zero: $(head -c 300 "$T/w.err")"
for f in val.json heldout.json pred.json val/000000000001.png pred/000000000060.png; do
    check "synth wrote $f" test -f "$W/$f"
done
check "60 evaluation PNGs" test "$(ls "$W/val" | wc -l)" = 60
check "40 held-out PNGs" test "$(ls "$W/heldout" | wc -l)" = 40
check "60 evaluation images" test "$(image_ids "$W/val.json" | wc -l)" = 60
check "40 held-out images" test "$(image_ids "$W/heldout.json" | wc -l)" = 40
check "splits share no image id" test -z "$(comm -12 <(image_ids "$W/val.json") <(image_ids "$W/heldout.json"))"
check "splits share no file name" test -z "$(comm -12 <(png_names "$W/val.json") <(png_names "$W/heldout.json"))"
check "every PNG named is there" test "$(png_names "$W/heldout.json" | sed 's/.*"\(.*\)"/\1/' | while read -r f; do
    [ -f "$W/heldout/$f" ] || echo "$f"; done)" = ""

# ---- categories: COCO panoptic's 133, 80 of them things, and only those used
check "133 categories" test "$(categories "$W/val.json" | wc -l)" = 133
check "80 things" test "$(categories "$W/val.json" | grep -c '"isthing": 1')" = 80
check "person is thing 1" grep -qF '{"id": 1, "name": "person", "supercategory": "person", "isthing": 1, "color": [220, 20, 60]}' "$W/val.json"
check "rug-merged is stuff 200" grep -qF '{"id": 200, "name": "rug-merged", "supercategory": "textile", "isthing": 0, "color": [250, 141, 255]}' "$W/val.json"
table=$(categories "$W/val.json" | grep -o '"id": [0-9]*' | grep -o '[0-9]*$' | sort -u)
for f in val heldout pred; do
    check "$f: every category used is in the table" test -z "$(comm -23 <(used_category_ids "$W/$f.json") <(echo "$table"))"
done
check "the splits share the categories" cmp -s <(categories "$W/val.json") <(categories "$W/heldout.json")

# ---- crowds and VOID occur, and JSON areas add up with VOID to the image
check "crowds occur" grep -q '"iscrowd": 1' "$W/val.json"
check "VOID occurs" test "$(void_pixels "$W/val.json" 19200 | awk '$2 > 0' | wc -l)" -gt 0
check "areas never exceed the image" test "$(void_pixels "$W/val.json" 19200 | awk '$2 < 0' | wc -l)" = 0

# ---- eval pq on it: the ground truth against itself is perfect; the prediction runs
"$AVPS" eval pq --gt-json "$W/val.json" --pred-json "$W/val.json" --json "$T/self.json" >"$T/self.txt" 2>"$T/self.err" ||
    ko "eval pq val against itself exited non-zero"
check "val against itself: PQ 100" grep -qE '^All +\| 100\.0 +100\.0 +100\.0' "$T/self.txt"
check "val against itself: no warning" test ! -s "$T/self.err"
check "report: All pq is 1" grep -qE '"All": \{"pq": 1[,.]' "$T/self.json"
"$AVPS" eval pq --gt-json "$W/val.json" --pred-json "$W/pred.json" >"$T/pred.txt" 2>"$T/pred.err" ||
    ko "eval pq pred against val exited non-zero: $(head -c 300 "$T/pred.err")"
check "pred against val: a table below 100" grep -qE '^All +\| +[1-9][0-9]?\.[0-9] ' "$T/pred.txt"
check "pred against val: no warning" test ! -s "$T/pred.err"

# ---- the same bytes for the same arguments, whatever the ranks and threads
args=(--images 9 --heldout 4 --size 64x48 --seed 11 --pred)
"$AVPS" synth --out "$T/a" "${args[@]}" --threads 1 >/dev/null || ko "synth -np 1"
$MPIRUN 2 "$AVPS" synth --out "$T/b" "${args[@]}" --threads 2 >/dev/null || ko "synth mpirun -np 2"
check "-np 1 and mpirun -np 2 write the same bytes" diff -r -q "$T/a" "$T/b"
"$AVPS" synth --out "$T/c" "${args[@]:0:8}" --seed 12 >/dev/null || ko "synth seed 12"
check "another seed, other pixels" differ "$T/a/val/000000000001.png" "$T/c/val/000000000001.png"
"$AVPS" synth --out "$T/d" --images 9 --heldout 7 --size 64x48 --seed 11 >/dev/null || ko "synth more held-out"
check "evaluation images do not depend on --heldout" diff -r -q "$T/a/val" "$T/d/val"
check "no pred without --pred" test ! -e "$T/d/pred.json" -a ! -e "$T/d/pred"
"$AVPS" synth --out "$T/e" --preset coco --images 2 --heldout 0 >/dev/null || ko "synth --preset coco"
check "preset coco: 640x480, options override it" grep -qF '"width": 640, "height": 480' "$T/e/val.json"
check "preset coco: --images overrides it" test "$(image_ids "$T/e/val.json" | wc -l)" = 2

# ---- bad arguments: non-zero exit, a message naming the problem, nothing written
refused() { # NAME PATTERN ARGS...
    local name=$1 pattern=$2; shift 2
    if "$AVPS" synth --out "$T/bad" "$@" >/dev/null 2>"$T/bad.txt"; then ko "$name: exited 0"; return; fi
    grep -qF -- "$pattern" "$T/bad.txt" || { ko "$name: message lacks '$pattern': $(head -c 300 "$T/bad.txt")"; return; }
    [ -e "$T/bad" ] && { ko "$name: wrote $T/bad"; return; }
    ok
}
refused "--size 0x5" "option --size: '0x5'" --size 0x5
refused "--size 64" "option --size: '64'" --size 64
refused "--size 64x48x2" "option --size: '64x48x2'" --size 64x48x2
refused "--heldout -1" "option --heldout: '-1'" --heldout -1
refused "--images 0" "option --images: '0'" --images 0
refused "unknown preset" "unknown preset 'imagenet'" --preset imagenet
refused "unknown option" "unknown argument '--width'" --width 5
"$AVPS" synth --images 3 >/dev/null 2>"$T/bad.txt" && ko "no --out accepted" ||
    { grep -q -- "--out is required" "$T/bad.txt" && ok || ko "no --out: message"; }
"$AVPS" synth --help | grep -q -- "--heldout" && ok || ko "--help names --heldout"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
