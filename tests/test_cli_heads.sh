#!/usr/bin/env bash
# test_cli_heads.sh: heads end to end: a simulated head gives the same bytes on any
# number of ranks and threads; a sim head stored and replayed gives the same outputs;
# import -> export gives a COCO results file and semantic PNGs back bit for bit (16-bit PNGs
# with the same values give the same store); broken
# stores are refused with a message naming head, image and file, and nothing is written.
# Usage: tests/test_cli_heads.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
T=$(mktemp -d /tmp/avps_heads_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$AVPS" synth --out "$T/w" --images 9 --heldout 1 --size 96x64 --seed 4 >/dev/null || ko "synth"
GT=$T/w/val.json
export_head() { # NAME OUT_PREFIX EXTRA...
    local name=$1 out=$2; shift 2
    "$AVPS" export --gt-json "$GT" --head "$name" --results "$out.json" --semantic-dir "$out.sem" "$@"
}
same_outputs() { # A B
    cmp -s "$1.json" "$2.json" && diff -r "$1.sem" "$2.sem" >/dev/null
}

# ---- the same (seed, head, image): the same bytes for any ranks and threads
for h in r50 htc_uw_dc; do
    export_head $h "$T/$h.t1" --backend sim --profile $h --threads 1 || ko "export $h"
    [ -s "$T/$h.t1.json" ] && ok || ko "$h: no results written"
    $MPIRUN 3 "$AVPS" export --gt-json "$GT" --head $h --backend sim --profile $h --threads 2 \
        --results "$T/$h.np3.json" --semantic-dir "$T/$h.np3.sem" >/dev/null || ko "mpirun -np 3 export $h"
    same_outputs "$T/$h.t1" "$T/$h.np3" && ok || ko "$h: mpirun -np 3 differs from 1 thread"
done
export_head r50 "$T/seed9" --backend sim --profile r50 --seed 9 || ko "export --seed 9"
cmp -s "$T/r50.t1.json" "$T/seed9.json" && ko "another seed gave the same instances" || ok
export_head r50b "$T/r50b" --backend sim --profile r50 || ko "export r50b"
cmp -s "$T/r50.t1.json" "$T/r50b.json" && ko "another head name gave the same instances" || ok

# ---- a sim head stored, then replayed: the same outputs (soft masks, logits, probs)
for h in r50 htc_uw_dc; do
    export_head $h "$T/$h.sim" --backend sim --profile $h --store-out "$T/$h.store" || ko "store-out $h"
    [ -f "$T/$h.store/head.json" ] && ok || ko "$h: store has no head.json"
    export_head $h "$T/$h.replay" --backend replay --store "$T/$h.store" || ko "replay $h"
    same_outputs "$T/$h.sim" "$T/$h.replay" && ok || ko "$h: replayed outputs differ from the sim's"
done

# ---- import -> export: the results file and the PNGs bit for bit
"$AVPS" import --gt-json "$GT" --results "$T/r50.t1.json" --semantic-dir "$T/r50.t1.sem" --out "$T/imp" \
    --head net >/dev/null || ko "import"
export_head net "$T/back" --backend replay --store "$T/imp" || ko "export of the imported store"
same_outputs "$T/r50.t1" "$T/back" && ok || ko "import -> export is not bit for bit"

# ---- import of semantic PNGs that cannot be read as they are: refused, the file named
import_error() { # WHAT PATTERN SEMANTIC_DIR [ULIMIT_KB]
    local what=$1 pattern=$2 dir=$3 lim=${4:-unlimited}
    case $AVPS in *san*) lim=unlimited ;; esac # ASan reserves terabytes of address space
    rm -rf "$T/imp_bad"
    if (ulimit -v "$lim" && "$AVPS" import --gt-json "$GT" --results "$T/r50.t1.json" --semantic-dir "$dir" \
        --out "$T/imp_bad" --head net >/dev/null 2>"$T/err"); then
        ko "$what: exit 0"
    elif ! grep -q -- "$pattern" "$T/err" || grep -q "out of memory" "$T/err"; then
        ko "$what: message lacks '$pattern': $(cat "$T/err")"
    else
        ok
    fi
}
sem1=$(ls "$T/r50.t1.sem" | head -1)
rm -rf "$T/sem16" && cp -r "$T/r50.t1.sem" "$T/sem16"
if /usr/bin/python3 -c "import numpy, PIL" 2>/dev/null; then
    # what cv2.imwrite writes for a uint16 label map: 16-bit grey, the same values
    /usr/bin/python3 -c "
import sys, numpy as np
from PIL import Image
a = np.asarray(Image.open(sys.argv[1]).convert('L')).astype(np.uint16)
Image.fromarray(a, mode='I;16').save(sys.argv[1])
assert open(sys.argv[1], 'rb').read()[24:26] == bytes([16, 0])  # IHDR: 16-bit grey" "$T/sem16/$sem1" || ko "writing a 16-bit PNG"
    # read as its values (issue 12 item 6): the same store as the 8-bit PNGs give
    rm -rf "$T/imp16"
    "$AVPS" import --gt-json "$GT" --results "$T/r50.t1.json" --semantic-dir "$T/sem16" --out "$T/imp16" \
        --head net >/dev/null 2>"$T/err" || ko "16-bit semantic PNG refused: $(cat "$T/err")"
    diff -r "$T/imp" "$T/imp16" >/dev/null && ok || ko "16-bit semantic PNG: another store than the 8-bit PNG's"
else
    echo "SKIP: 16-bit semantic PNG (no numpy/Pillow in /usr/bin/python3)"
fi
# a 69-byte PNG claiming 46341x46341: refused from its header, in bounded memory
rm -rf "$T/semhuge" && cp -r "$T/r50.t1.sem" "$T/semhuge"
/usr/bin/python3 -c "
import struct, sys, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 46341, 46341, 8, 2, 0, 0, 0)) \
    + chunk(b'IDAT', zlib.compress(bytes(4), 9)) + chunk(b'IEND', b'')
assert len(png) == 69, len(png)
open(sys.argv[1], 'wb').write(png)" "$T/semhuge/$sem1" || ko "writing the 69-byte PNG"
import_error "46341x46341 header" "$sem1: the PNG is 46341x46341, but 96x64 is expected" "$T/semhuge" 2000000

# ---- bad input: an error naming head, image and file; no results file left behind
expect_error() { # WHAT PATTERN STORE
    local what=$1 pattern=$2 store=$3
    rm -f "$T/bad.json"
    if "$AVPS" export --gt-json "$GT" --head net --backend replay --store "$store" --results "$T/bad.json" \
        --threads 1 >/dev/null 2>"$T/err"; then
        ko "$what: exit 0"
    elif ! grep -q -- "$pattern" "$T/err"; then
        ko "$what: message lacks '$pattern': $(cat "$T/err")"
    elif [ -e "$T/bad.json" ] || ls "$T"/bad.json.tmp* >/dev/null 2>&1; then
        ko "$what: a results file was left behind"
    else
        ok
    fi
}
fresh_store() { rm -rf "$T/b"; cp -r "$T/htc_uw_dc.store" "$T/b"; }
first=$(ls "$T/htc_uw_dc.store" | grep -m1 '\.ss\.npy\.zst$')
id=${first%.ss.npy.zst}
fresh_store; head -c 60 "$T/b/$id.ss.npy.zst" >"$T/cut" && mv "$T/cut" "$T/b/$id.ss.npy.zst"
expect_error "truncated .zst" "image $id.*$id.ss.npy.zst" "$T/b"
fresh_store; cp "$T/imp/$id.ss.npy.zst" "$T/b/$id.ss.npy.zst"
expect_error "wrong dtype and shape" "head net, image $id.*$id.ss.npy.zst" "$T/b"
fresh_store; rm "$T/b/$id.json"
expect_error "missing image" "head net, image $id.*$id.json" "$T/b"
fresh_store; sed -i 's/"categories": \[[0-9]*/"categories": [999/' "$T/b/head.json"
expect_error "unknown category in the channel map" "head.json.*category 999" "$T/b"
fresh_store; rm "$T/b/head.json"
expect_error "store without head.json" "head.json" "$T/b"
fresh_store; sed -i 's/"counts": "[^"]*"/"counts": "!!"/' "$T/b/$id.json"
sed -i 's/"soft": 0/"segmentation": {"size": [64, 96], "counts": "!!"}, "x": 0/' "$T/b/$id.json"
expect_error "malformed RLE" "image $id.*instance" "$T/b"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
