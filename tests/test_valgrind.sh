#!/usr/bin/env bash
# test_valgrind.sh: the CLI paths under valgrind (alone, without mpirun): a report, an
# error, the synthetic world, and .npy.zst through build/tests/npy_tool. Any memory
# error or leak of ours fails.
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/avps_vg_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
clean() { # NAME EXPECTED_STATUS COMMAND...
    local name=$1 want=$2; shift 2
    $VG "$@" >/dev/null 2>"$T/vg.txt"; local rc=$?
    if [ "$rc" = "$want" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1)); echo "FAIL: $name: exit $rc, wanted $want"; head -40 "$T/vg.txt"; fi
}
FIX=$ROOT/tests/fixtures
clean "eval pq" 0 "$AVPS" eval pq --gt-json "$FIX/pq/synthetic_0/gt.json" --pred-json "$FIX/pq/synthetic_0/pred.json" --json "$T/r.json" --threads 2
clean "eval pq error" 1 "$AVPS" eval pq --gt-json "$FIX/pq_errors/png_not_json/gt.json" --pred-json "$FIX/pq_errors/png_not_json/pred.json"
clean "eval pq missing file" 1 "$AVPS" eval pq --gt-json "$T/none.json" --pred-json "$T/none.json"
A=$ROOT/tests/fixtures/ap/synthetic_0
clean "eval ap" 0 "$AVPS" eval ap --gt "$A/gt.json" --dt "$A/dt.json" --json "$T/ap.json" --threads 2
clean "eval ap error" 1 "$AVPS" eval ap --gt "$A/gt.json" --dt "$T/none.json"
# a ground-truth error: the streamed reader stops, the whole-file reader gives the message
sed 's/"iscrowd": 0/"iscrowd": 7/' "$A/gt.json" > "$T/badcrowd.json"
clean "eval ap ground-truth error" 1 "$AVPS" eval ap --gt "$T/badcrowd.json" --dt "$A/dt.json" --threads 2
clean "convert" 0 "$AVPS" convert panoptic-to-instances --gt-json "$FIX/pq/synthetic_1/gt.json" --out "$T/inst.json"
clean "synth" 0 "$AVPS" synth --out "$T/syn" --images 3 --heldout 2 --size 40x30 --pred --threads 2
clean "synth error" 1 "$AVPS" synth --out "$T/syn_bad" --size 0x5
G=$T/syn/val.json
clean "export sim" 0 "$AVPS" export --gt-json "$G" --head r50 --backend sim --profile r50 --threads 2 \
    --results "$T/x.json" --semantic-dir "$T/x.sem" --store-out "$T/x.store"
clean "export replay" 0 "$AVPS" export --gt-json "$G" --head r50 --backend replay --store "$T/x.store" \
    --results "$T/y.json" --semantic-dir "$T/y.sem"
clean "import" 0 "$AVPS" import --gt-json "$G" --results "$T/x.json" --semantic-dir "$T/x.sem" --out "$T/imp" --head n
clean "export ensemble" 0 "$AVPS" export --gt-json "$G" --head e --member r50:r50:1 --member htc:htc:2 --threads 2 \
    --results "$T/e.json" --semantic-dir "$T/e.sem"
clean "export error" 1 "$AVPS" export --gt-json "$G" --head r50 --backend replay --store "$T/none" --results "$T/z.json"
clean "calibrate" 0 "$AVPS" calibrate --heldout-json "$T/syn/heldout.json" --eval-json "$G" --end a=sim:r50 \
    --end b=sim:htc --out "$T/ct.json" --report "$T/cr.json" --min-instances 1 --bootstrap 5 --threads 2
clean "calibrate table" 0 "$AVPS" calibrate --heldout-json "$T/syn/heldout.json" --end a=sim:r50 --end b=sim:htc \
    --table "$T/ct.json" --bootstrap 2
clean "calibrate error" 1 "$AVPS" calibrate --heldout-json "$G" --eval-json "$G" --end a=sim:r50 --out "$T/cx.json"
NPY=$ROOT/build/tests/npy_tool
clean "npy write" 0 "$NPY" halves "$T/h.npy.zst"
clean "npy read" 0 "$NPY" copy "$T/h.npy.zst" "$T/h.npy"
head -c 1000 "$T/h.npy.zst" >"$T/cut.npy.zst"
clean "npy truncated" 1 "$NPY" copy "$T/cut.npy.zst" "$T/never.npy"
C=$ROOT/tests/fixtures/combine/synthetic_1
clean "combine" 0 "$AVPS" combine --semantic "$C/semantic.json" --instances "$C/instances.json" --instances "$C/instances.json" \
    --images "$C/images.json" --categories "$C/categories.json" --out-json "$T/pan.json" --confidence-thr 1=0.7 --threads 2
clean "combine error" 1 "$AVPS" combine --semantic "$C/semantic.json" --instances "$A/dt.json" \
    --images "$C/images.json" --categories "$C/categories.json" --out-json "$T/bad.json"
cat >"$T/run.json" <<EOF
{"datasets": {"heldout": {"gt_json": "syn/heldout.json"}, "eval": {"gt_json": "syn/val.json"}},
 "heads": [{"name": "r50", "backend": "sim"}, {"name": "r101", "backend": "sim"}, {"name": "htc", "backend": "sim"}],
 "ensemble": {"members": ["r50", "r101"]}, "lwl_htc": "htc", "fusion": {"min_instances": 1}, "out": "run"}
EOF
clean "run" 0 "$AVPS" run "$T/run.json" --threads 2 --quiet
clean "run resume" 0 "$AVPS" run "$T/run.json" --threads 2 --quiet --resume
clean "run error" 1 "$AVPS" run "$T/run.json" --quiet
clean "tables" 0 "$AVPS" tables "$T/run.json" --out "$T/tables" --threads 2
clean "fuse" 0 "$AVPS" fuse --gt-json "$G" --end e_ups=sim:r50 --end htc=sim:htc --class-table "$T/run/class_table.json" \
    --out-json "$T/fused.json" --threads 2
# the native engine, on the narrow network the native suite generated (tests/run runs it first)
N=$ROOT/build/native/narrow
if [ -f "$N/weights.safetensors" ]; then
    clean "infer" 0 "$AVPS" infer --weights "$N/weights.safetensors" --image "$N/image.png" --json "$T/infer.json" --score-thr 0.01
    head -c 100 "$N/weights.safetensors" >"$T/cut.safetensors"
    clean "infer error" 1 "$AVPS" infer --weights "$T/cut.safetensors" --image "$N/image.png" --json "$T/never.json"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
