#!/usr/bin/env bash
# test_cli_partial.sh: nothing partial on any failure (issue 12 item 10, docs/formats.md
# "Output paths"): every input an invocation needs is checked before its first output is
# written, a failed invocation removes what it made (alone and under mpirun), a previous
# prediction store is left as it was, and a bad output path fails before any work. A full
# disk is a file size limit (ulimit -f, SIGXFSZ ignored): writes past it fail with EFBIG.
# Usage: tests/test_cli_partial.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
FIX=$(cd "$(dirname "$0")/fixtures/combine/synthetic_0" && pwd)
PQ=$(cd "$(dirname "$0")/fixtures/pq" && pwd)/$(ls "$(dirname "$0")/fixtures/pq" | head -1)
T=$(mktemp -d /tmp/avps_partial_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# A listing of a folder with every file's checksum: "untouched" means the same listing.
snapshot() { (cd "$1" && find . -type f -exec md5sum {} + | sort) 2>/dev/null; }
# fails WHAT PATTERN COMMAND...: exits non-zero with PATTERN in its message
fails() {
    local what=$1 pattern=$2; shift 2
    if "$@" >"$T/out" 2>"$T/err"; then
        ko "$what: exit 0"; return 1
    fi
    grep -q -- "$pattern" "$T/err" && return 0
    ko "$what: message lacks '$pattern': $(head -c 600 "$T/err")"; return 1
}
absent() { # WHAT PATH...: none of them exists
    local what=$1; shift
    for p in "$@"; do
        [ -e "$p" ] && { ko "$what: $p was left: $(ls -A "$p" 2>/dev/null | head -5 | tr '\n' ' ')"; return; }
    done
    ok
}
full_disk() { (trap '' XFSZ; ulimit -f "$1"; shift; exec "$@"); } # KIB COMMAND...
# Makes every file under a folder hold its own name: outputs a rerun would not write again
# byte for byte, so that a failed rerun that touched them shows.
mark_old() { find "$1" -type f -exec sh -c 'for f; do echo "old $f" >"$f"; done' _ {} +; }

"$AVPS" synth --out "$T/w" --images 6 --heldout 1 --size 96x64 --seed 4 >/dev/null || ko "synth"
GT=$T/w/val.json
last=$(sed -n 's/.*"file_name": *"\([^"]*\.png\)".*/\1/p' "$GT" | tail -1)
[ -n "$last" ] || last=$(ls "$T/w/val" | tail -1)
export_sim() { # HEAD OUT_PREFIX EXTRA...
    local h=$1 out=$2; shift 2
    "$AVPS" export --gt-json "$GT" --head "$h" --backend sim --profile "$h" --results "$out.json" \
        --semantic-dir "$out.sem" "$@" >/dev/null
}
export_sim r50 "$T/r50" || ko "export r50"
export_sim htc_uw_dc "$T/htc" || ko "export htc"
import() { # RESULTS SEMANTIC_DIR OUT [RUNNER...]
    local res=$1 sem=$2 out=$3; shift 3
    "$@" "$AVPS" import --gt-json "$GT" --results "$res" --semantic-dir "$sem" --out "$out" --head net
}

# ---- import: a missing semantic PNG fails before the store is started
cp -r "$T/r50.sem" "$T/sem_missing" && rm "$T/sem_missing/$last"
fails "import, PNG missing" "$last" import "$T/r50.json" "$T/sem_missing" "$T/new/store" && ok
absent "import, PNG missing: a new store" "$T/new"
import "$T/htc.json" "$T/htc.sem" "$T/prev" >/dev/null || ko "import of the previous store"
before=$(snapshot "$T/prev")
fails "import over a store, PNG missing" "$last" import "$T/r50.json" "$T/sem_missing" "$T/prev" && ok
[ "$(snapshot "$T/prev")" = "$before" ] && ok || ko "import, PNG missing: the previous store was changed"
# a PNG that only fails when read (a pixel not grey): the job removes what it wrote
cp -r "$T/r50.sem" "$T/sem_colour"
/usr/bin/python3 - "$T/r50.sem/$last" "$T/sem_colour/$last" <<'EOF' 2>/dev/null || cp "$T/r50.sem/$last" "$T/sem_colour/$last"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
im.putpixel((3, 2), (1, 2, 3))
im.save(sys.argv[2])
EOF
if cmp -s "$T/r50.sem/$last" "$T/sem_colour/$last"; then
    echo "SKIP: no Pillow: the mid-import failure cases did not run"
else
    for runner in "" "$MPIRUN 2"; do
        rm -rf "$T/new"
        fails "import ($runner), a colour pixel" "is not grey" import "$T/r50.json" "$T/sem_colour" "$T/new/store" $runner &&
            ok
        absent "import ($runner), a colour pixel: a new store" "$T/new"
        fails "import ($runner) over a store, a colour pixel" "is not grey" import "$T/r50.json" "$T/sem_colour" "$T/prev" $runner && ok
        [ "$(snapshot "$T/prev")" = "$before" ] && ok || ko "import ($runner), a colour pixel: the previous store was changed"
        absent "import ($runner): the staging folder" "$T/prev.partial" "$T/new/store.partial"
    done
fi
# and a good import replaces the previous store as a whole
import "$T/r50.json" "$T/r50.sem" "$T/prev" >/dev/null && [ "$(snapshot "$T/prev")" != "$before" ] &&
    [ -f "$T/prev/head.json" ] && ok || ko "import over a previous store"
absent "import: the staging folder" "$T/prev.partial"
mkdir -p "$T/notastore" && echo mine >"$T/notastore/keep.txt"
fails "import into a folder that is not a store" "neither empty nor a prediction store" \
    import "$T/r50.json" "$T/r50.sem" "$T/notastore" && [ "$(cat "$T/notastore/keep.txt")" = mine ] && ok

# ---- replay: a store without one image's file fails before any image is done
cp -r "$T/prev" "$T/holey"
id=$(ls "$T/holey" | sed -n 's/\.ss\.npy\.zst$//p' | sort -n | tail -1)
rm "$T/holey/$id.ss.npy.zst"
fails "replay, a file missing" "image $id: .*$id.ss.npy.zst" "$AVPS" export --gt-json "$GT" --head net \
    --backend replay --store "$T/holey" --results "$T/rp.json" --semantic-dir "$T/rp.sem" --threads 1 && ok
absent "replay, a file missing: outputs" "$T/rp.json" "$T/rp.sem"

# ---- export: an image that fails (its ground truth PNG gone) leaves none of the outputs
cp -r "$T/w" "$T/w2" && rm "$T/w2/val/$last"
for runner in "" "$MPIRUN 2"; do
    rm -rf "$T/ex" && mkdir "$T/ex"
    fails "export ($runner), a GT PNG missing" "$last" $runner "$AVPS" export --gt-json "$T/w2/val.json" --head r50 \
        --backend sim --profile r50 --results "$T/ex/r.json" --semantic-dir "$T/ex/sem" --store-out "$T/ex/store" && ok
    [ -z "$(ls -A "$T/ex")" ] && ok || ko "export ($runner), a GT PNG missing: left $(ls -A "$T/ex" | tr '\n' ' ')"
done

# ---- combine: a full disk leaves neither the JSON nor the PNG folder
comb() { # OUT_JSON [RUNNER...]
    local out=$1; shift
    "$@" "$AVPS" combine --semantic "$FIX/semantic.json" --instances "$FIX/instances.json" --images "$FIX/images.json" \
        --categories "$FIX/categories.json" --out-json "$out"
}
comb "$T/c_ok/pan.json" >/dev/null && [ -d "$T/c_ok/pan" ] && ok || ko "combine"
# under mpirun the limit is set in each rank (mpirun itself needs its shared memory files)
printf '#!/usr/bin/env bash\ntrap "" XFSZ\nulimit -f 1\nexec "$@"\n' >"$T/limited" && chmod +x "$T/limited"
for runner in "full_disk 1" "$MPIRUN 2 $T/limited"; do
    rm -rf "$T/c"
    fails "combine (${runner:0:12}), a full disk" "File too large" $runner "$AVPS" combine \
        --semantic "$FIX/semantic.json" --instances "$FIX/instances.json" --images "$FIX/images.json" \
        --categories "$FIX/categories.json" --out-json "$T/c/pan.json" && ok
    absent "combine (${runner:0:12}), a full disk" "$T/c"
done
# into folders that exist: what was there stays, nothing new does
mkdir -p "$T/c2/pan" && echo old >"$T/c2/pan/keep.png"
fails "combine into a folder, a full disk" "File too large" full_disk 1 "$AVPS" combine \
    --semantic "$FIX/semantic.json" --instances "$FIX/instances.json" --images "$FIX/images.json" \
    --categories "$FIX/categories.json" --out-json "$T/c2/pan.json" && ok
[ "$(ls -A "$T/c2/pan")" = keep.png ] && [ "$(ls -A "$T/c2")" = pan ] && ok ||
    ko "combine into a folder: left $(ls -A "$T/c2" "$T/c2/pan" | tr '\n' ' ')"
# a folder given as the JSON: refused before any PNG is written
mkdir -p "$T/c3/pan.json"
fails "combine, --out-json a folder" "is a folder" comb "$T/c3/pan.json" && ok
absent "combine, --out-json a folder: PNGs" "$T/c3/pan"

# ---- synth: a full disk leaves no half world
fails "synth, a full disk" "File too large" full_disk 1 "$AVPS" synth --out "$T/sw" --images 3 --heldout 1 \
    --size 96x64 && ok
absent "synth, a full disk" "$T/sw"

# ---- fuse: an end's store that lacks, or cannot read, the last image; a full disk; a
# device that is full. Nothing is left, and outputs that were there stay as they were.
"$AVPS" calibrate --heldout-json "$T/w/heldout.json" --end net=sim:r50:2 --end htc=sim:htc_uw_dc:2 \
    --out "$T/ct.json" >/dev/null 2>&1 || ko "calibrate"
cp -r "$T/prev" "$T/trunc" && head -c 40 "$T/prev/$id.ss.npy.zst" >"$T/trunc/$id.ss.npy.zst"
fuse() { # STORE OUT_JSON [EXTRA...]: run with RUNNER (empty: alone)
    local store=$1 out=$2; shift 2
    $RUNNER "$AVPS" fuse --gt-json "$GT" --end net=replay:"$store" --end htc=sim:htc_uw_dc:2 --class-table "$T/ct.json" \
        --out-json "$out" "$@"
}
RUNNER="" fuse "$T/prev" "$T/fok/f.json" 2>/dev/null && [ -s "$T/fok/f.json" ] && [ -d "$T/fok/f" ] && ok || ko "fuse"
for RUNNER in "" "$MPIRUN 2"; do
    for store in holey trunc; do
        rm -rf "$T/fo" && mkdir "$T/fo"
        fails "fuse ($RUNNER), store $store" "image $id" fuse "$T/$store" "$T/fo/f.json" && ok
        [ -z "$(ls -A "$T/fo")" ] && ok || ko "fuse ($RUNNER), store $store: left $(ls -A "$T/fo" | tr '\n' ' ')"
    done
done
RUNNER=""
for limit in "full_disk 1" "$MPIRUN 2 $T/limited"; do
    rm -rf "$T/fo" && mkdir "$T/fo"
    RUNNER=$limit fails "fuse (${limit:0:12}), a full disk" "File too large" fuse "$T/prev" "$T/fo/f.json" && ok
    [ -z "$(ls -A "$T/fo")" ] && ok || ko "fuse (${limit:0:12}), a full disk: left $(ls -A "$T/fo" | tr '\n' ' ')"
done
rm -rf "$T/fo" && mkdir "$T/fo"
fails "fuse --out-json /dev/full" "No space left" fuse "$T/prev" /dev/full --out-dir "$T/fo/png" && ok
[ -z "$(ls -A "$T/fo")" ] && ok || ko "fuse --out-json /dev/full: left $(ls -A "$T/fo" | tr '\n' ' ')"
# over the outputs of a previous fuse: a failure changes none of them
mark_old "$T/fok"
before=$(snapshot "$T/fok")
fails "fuse over outputs, store trunc" "image $id" fuse "$T/trunc" "$T/fok/f.json" && ok
RUNNER="full_disk 1" fails "fuse over outputs, a full disk" "File too large" fuse "$T/prev" "$T/fok/f.json" && ok
[ "$(snapshot "$T/fok")" = "$before" ] && ok || ko "fuse over outputs: a failed fuse changed them"

# ---- tables: the same for `avps tables` (its class table reaches the ranks through the
# output folder under a staging name, and tables.md, tables.json and class_table.json
# stand or fall together); a replay store is checked on the held-out split too
tables_config() { # FILE STORE [CLASS_TABLE]
    cat >"$1" <<EOF2
{"seed": 2, "datasets": {"heldout": {"gt_json": "w/heldout.json"}, "eval": {"gt_json": "w/val.json"}},
 "heads": [{"name": "net", "backend": "replay", "store": "$2"},
           {"name": "htc", "backend": "sim", "profile": "htc_uw_dc"}],
 "ensemble": {"members": ["net"]}, "lwl_htc": "htc", "fusion": {${3:+\"class_table\": \"$3\", }"stuff_area_limit": 256}}
EOF2
}
for s in prev holey trunc; do tables_config "$T/t_$s.json" $s ct.json; done
tables_config "$T/t_noheldout.json" prev
"$AVPS" tables "$T/t_prev.json" --out "$T/tok" >/dev/null 2>&1 && [ -s "$T/tok/tables.json" ] &&
    [ -s "$T/tok/tables.md" ] && [ -s "$T/tok/class_table.json" ] && ok || ko "tables"
absent "tables: the staged class table" "$T/tok/class_table.json.partial"
for runner in "" "$MPIRUN 2"; do
    for s in holey trunc; do
        rm -rf "$T/to"
        fails "tables ($runner), store $s" "image $id" $runner "$AVPS" tables "$T/t_$s.json" --out "$T/to" && ok
        absent "tables ($runner), store $s" "$T/to"
    done
done
rm -rf "$T/to"
fails "tables, a full disk" "File too large" full_disk 20 "$AVPS" tables "$T/t_prev.json" --out "$T/to" && ok
absent "tables, a full disk" "$T/to"
hid=$(sed -n 's/.*"image_id": *\([0-9]*\).*/\1/p' "$T/w/heldout.json" | head -1)
fails "tables, a store without the held-out images" "image $hid: .*checked before any image is run" \
    "$AVPS" tables "$T/t_noheldout.json" --out "$T/to" && ok
absent "tables, a store without the held-out images" "$T/to"
mark_old "$T/tok"
before=$(snapshot "$T/tok")
fails "tables over outputs, store trunc" "image $id" "$AVPS" tables "$T/t_trunc.json" --out "$T/tok" && ok
fails "tables over outputs, a full disk" "File too large" full_disk 20 "$AVPS" tables "$T/t_prev.json" --out "$T/tok" && ok
fails "tables over outputs, mpirun, store trunc" "image $id" $MPIRUN 2 "$AVPS" tables "$T/t_trunc.json" --out "$T/tok" && ok
[ "$(snapshot "$T/tok")" = "$before" ] && ok || ko "tables over outputs: a failed tables changed them: $(ls -A "$T/tok")"
# OUT/figures a file: the figures cannot be put in place once the tables are written, so none is
rm -rf "$T/tok/figures" && echo "old figures" >"$T/tok/figures"
before=$(snapshot "$T/tok")
fails "tables over outputs, OUT/figures a file" "figures" "$AVPS" tables "$T/t_prev.json" --out "$T/tok" && ok
[ "$(snapshot "$T/tok")" = "$before" ] && ok || ko "tables, OUT/figures a file: a failed tables changed them"
absent "tables, OUT/figures a file: the stage" "$T/tok/figures.partial"

# ---- infer (weights from scripts/native-reference: needs torch): a bad image, a full disk,
# /dev/full, an output the weights cannot give; a previous JSON and dump folder stay as they were
if /usr/bin/python3 -c "import torch, torchvision" >/dev/null 2>&1 &&
    /usr/bin/python3 "$(dirname "$0")/../scripts/native-reference" --out "$T/nw" --variant narrow --no-reference \
        >/dev/null 2>&1; then
    infer() { "$AVPS" infer --weights "$T/nw/weights.safetensors" "$@"; }
    mkdir -p "$T/iok" && infer --image "$T/nw/image.png" --json "$T/iok/i.json" --dump-dir "$T/iok/d" >/dev/null 2>&1 &&
        [ -s "$T/iok/i.json" ] && [ -s "$T/iok/d/masks.npy" ] && ok || ko "infer"
    head -c 200 "$T/nw/image.png" >"$T/bad.png"
    mkdir -p "$T/io"
    fails "infer, a truncated image" "bad.png" infer --image "$T/bad.png" --json "$T/io/i.json" --dump-dir "$T/io/d" && ok
    fails "infer, a full disk" "File too large" full_disk 2000 "$AVPS" infer --weights "$T/nw/weights.safetensors" \
        --image "$T/nw/image.png" --json "$T/io/i.json" --dump-dir "$T/io/d" && ok
    fails "infer --json /dev/full" "No space left" infer --image "$T/nw/image.png" --json /dev/full --dump-dir "$T/io/d" && ok
    fails "infer --panoptic-json of Mask R-CNN weights" "gives no panoptic result" infer --image "$T/nw/image.png" \
        --json "$T/io/i.json" --panoptic-json "$T/io/p.json" && ok
    [ -z "$(ls -A "$T/io")" ] && ok || ko "infer failures left $(ls -A "$T/io" | tr '\n' ' ')"
    mark_old "$T/iok"
    before=$(snapshot "$T/iok")
    fails "infer over outputs, a full disk" "File too large" full_disk 2000 "$AVPS" infer \
        --weights "$T/nw/weights.safetensors" --image "$T/nw/image.png" --json "$T/iok/i.json" --dump-dir "$T/iok/d" && ok
    fails "infer over outputs, --panoptic-json of Mask R-CNN weights" "gives no panoptic result" \
        infer --image "$T/nw/image.png" --json "$T/iok/i.json" --panoptic-json "$T/iok/p.json" && ok
    fails "infer over outputs, a truncated image" "bad.png" infer --image "$T/bad.png" --json "$T/iok/i.json" \
        --dump-dir "$T/iok/d" && ok
    [ "$(snapshot "$T/iok")" = "$before" ] && ok || ko "infer over outputs: a failed infer changed them: $(ls -A "$T/iok")"
    absent "infer: staging names" "$T/iok/d.partial" "$T/io/d.partial"
else
    echo "SKIP: no torch/torchvision for scripts/native-reference: the infer cases did not run"
fi

# ---- single outputs: a bad path fails before the work (nothing printed), the path left alone
mkdir -p "$T/isdir"
fails "eval pq --json a folder" "is a folder" "$AVPS" eval pq --gt-json "$PQ/gt.json" --pred-json "$PQ/pred.json" \
    --json "$T/isdir" && [ ! -s "$T/out" ] && [ -d "$T/isdir" ] && ok
fails "eval pq --json in a missing folder" "no/such" "$AVPS" eval pq --gt-json "$PQ/gt.json" --pred-json "$PQ/pred.json" \
    --json "$T/no/such/pq.json" && [ ! -s "$T/out" ] && ok

echo "$passed passed, $failed failed"
