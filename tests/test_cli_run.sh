#!/usr/bin/env bash
# test_cli_run.sh: `avps run` end to end on a tiny synthetic world: report.json byte for
# byte the same for 1 thread, 3 threads, mpirun -np 1, 2 and 3 (the root holding no more
# records than its window); each end's PQ equal to
# `avps eval pq` on that end's panoptic output on disk; panoptic.json and its PNGs agree
# segment for segment (what panopticapi requires); --resume after ranks killed midway
# gives the same report; a replay head gives what the sim head it stored gives; a
# failure on one rank ends the job with its message and no hang; bad configs are refused
# naming the key, and leave nothing on disk.
# Usage: tests/test_cli_run.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
# Debian's Python: scripts/setup-deps installs its numpy and Pillow
PY=${AVPS_PYTHON:-/usr/bin/python3}
AVPS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/avps_run_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="timeout 120 mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$AVPS" synth --out "$T/w" --images 10 --heldout 8 --size 96x64 --seed 5 >/dev/null || ko "synth"
config() { # OUT_FILE [EXTRA_TOP_LEVEL_JSON]
    cat >"$1" <<EOF
{
  "seed": 2,
  "datasets": {"heldout": {"gt_json": "w/heldout.json"}, "eval": {"gt_json": "w/val.json"}},
  "heads": [
    {"name": "r50", "backend": "sim", "profile": "r50"},
    {"name": "senet154_lsh", "backend": "sim", "profile": "senet154_lsh", "weight": 1.3},
    {"name": "htc_uw_dc", "backend": "sim", "profile": "htc_uw_dc"}
  ],
  "ensemble": {"members": ["r50", "senet154_lsh"], "weights": [0.4, 1.3]},
  "lwl_htc": "htc_uw_dc",
  "fusion": {"min_instances": 2, "stuff_area_limit": 256}${2:-}
}
EOF
}
config "$T/c.json" ', "write_end_panoptic": true'
cd "$T" || exit 1

# ---- the same report for any number of ranks and threads
"$AVPS" run c.json --out r1 --threads 1 --quiet || ko "run, 1 thread"
[ -s r1/report.json ] && [ -s r1/panoptic.json ] && [ -s r1/table3.md ] && [ -s r1/timings.json ] &&
    [ -s r1/class_table.json ] && ok || ko "run wrote no report, panoptic.json, table3.md, timings or class table"
"$AVPS" run c.json --out r3 --threads 3 --quiet || ko "run, 3 threads"
$MPIRUN 2 "$AVPS" run c.json --out n2 --threads 1 --quiet || ko "mpirun -np 2 run"
$MPIRUN 3 "$AVPS" run c.json --out n3 --threads 2 --chunk 1 --quiet || ko "mpirun -np 3 run"
for r in r3 n2 n3; do
    cmp -s r1/report.json $r/report.json && ok || ko "$r: report.json differs from 1 thread's"
    cmp -s r1/panoptic.json $r/panoptic.json && diff -r r1/panoptic $r/panoptic >/dev/null && ok ||
        ko "$r: panoptic output differs from 1 thread's"
done

# ---- the root folds records as they come (issue 16 item 6): on 60 images, the same bytes
# for mpirun -np 1, 2 and 3, and the root never held more records than its window,
# 4 x ranks x (threads + chunk), far fewer than the images
"$AVPS" synth --out "$T/w60" --images 60 --heldout 8 --size 48x32 --seed 7 >/dev/null || ko "synth 60"
sed 's#"w/#"w60/#g' c.json >c60.json
for np in 1 2 3; do
    $MPIRUN $np "$AVPS" run c60.json --out m$np --threads 1 --chunk 1 --quiet || ko "mpirun -np $np run, 60 images"
done
for np in 2 3; do
    cmp -s m1/report.json m$np/report.json && cmp -s m1/panoptic.json m$np/panoptic.json &&
        cmp -s m1/ends/e_ups.json m$np/ends/e_ups.json && ok || ko "60 images: -np $np's report or panoptic JSON differs from -np 1's"
done
# every rank's figures reach timings.json (issue 16 item 8): one entry per rank, the
# images they made summing to the run's, only the other ranks asking for work, and the
# steps' CPU seconds there
for np in 1 2 3; do
    out=$("$PY" - m$np/timings.json $np 60 <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
n, images = int(sys.argv[2]), int(sys.argv[3])
s = t["rank_stats"]
bad = []
if len(s) != n or [r["rank"] for r in s] != list(range(n)):
    bad.append("rank_stats has %d entries for %d ranks" % (len(s), n))
if sum(r["images"] for r in s) != images:
    bad.append("rank_stats images sum to %d, not %d" % (sum(r["images"] for r in s), images))
if s and s[0]["requests"] != 0 or any(r["requests"] < 1 for r in s[1:]):
    bad.append("requests: %s" % [r["requests"] for r in s])
if any(r["cpu_seconds"] <= 0 or r["wait_seconds"] < 0 or r["peak_rss_kib"] <= 0 for r in s):
    bad.append("a rank without CPU seconds or peak RSS, or a negative wait")
if set(t["steps_cpu_seconds"]) != set(t["steps_thread_seconds"]) or sum(t["steps_cpu_seconds"].values()) <= 0:
    bad.append("steps_cpu_seconds: %s" % t["steps_cpu_seconds"])
print("; ".join(bad) if bad else "ok")
PY
)
    [ "$out" = ok ] && ok || ko "-np $np: timings.json: $out"
done
for np in 1 2 3; do
    held=$(sed -n 's/.*"root_records_buffered_max": \([0-9]*\).*/\1/p' m$np/timings.json)
    [ -n "$held" ] && [ "$held" -ge 1 ] && [ "$held" -le $((4 * np * 2)) ] && ok ||
        ko "-np $np: the root held ${held:-?} records at once (window $((4 * np * 2)))"
done

# ---- one config, one report, however its path is spelled (issue 12 item 11)
"$AVPS" run "$T/../$(basename "$T")/./c.json" --out "$T/spelled" --threads 1 --quiet || ko "run, config by another path"
cmp -s r1/report.json spelled/report.json && cmp -s r1/table3.md spelled/table3.md && ok ||
    ko "report.json or table3.md depends on how the config path is spelled: $(diff r1/report.json spelled/report.json | head -4)"
grep -q "\"config\": \"$(cd "$T" && pwd -P)/c.json\"" r1/report.json && ok || ko "provenance.config is not the canonical path"

# ---- viewable PNGs: ids are category colours (stuff) or jittered ones (things), as the JSON says
if /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null; then
    out=$(/usr/bin/python3 "$HERE/pan_colors.py" r1/panoptic.json r1/panoptic) && ok || ko "run colours: $out"
else
    echo "SKIP: /usr/bin/python3 has no numpy or Pillow: colours of the run's PNGs"; ko "colours not checked"
fi

# ---- what a person sees: progress lines, the table on stdout; --quiet shows nothing
"$AVPS" run c.json --out pl --threads 1 --progress lines >pl.out 2>pl.err || ko "run --progress lines"
grep -q '^avps run: 10/10 images, .* images/s' pl.err && grep -q '^| Fusion (ours) |' pl.out && ok ||
    ko "progress lines or the table missing: $(cat pl.err)"
"$AVPS" run c.json --out pq_quiet --threads 1 --quiet >q.out 2>q.err || ko "run --quiet"
[ ! -s q.out ] && [ ! -s q.err ] && ok || ko "--quiet printed something"
"$AVPS" run c.json --out pn --progress none 2>pn.err >/dev/null && ! grep -q 'images/s' pn.err && ok ||
    ko "--progress none printed progress"
"$AVPS" run c.json --out px --progress sometimes 2>px.err && ko "--progress sometimes accepted" ||
    { grep -q -- "--progress must be" px.err && [ ! -e px ] && ok || ko "--progress sometimes: $(cat px.err)"; }

# ---- a rank takes the GPU of its node-local rank among those it may see
CUDA_VISIBLE_DEVICES=4,6 $MPIRUN 2 "$AVPS" run c.json --out gpu --threads 1 --quiet || ko "run with GPUs visible"
grep -q '"root_gpu": "4"' gpu/timings.json && ok || ko "rank 0 did not take the first visible GPU"
cmp -s r1/report.json gpu/report.json && ok || ko "binding a GPU changed the report"

# ---- each end's PQ is what avps eval pq gives on its output on disk
end_pq() { # END PRED_JSON
    "$AVPS" eval pq --gt-json w/val.json --pred-json "$2" --json "pq_$1.json" >/dev/null || { ko "eval pq $1"; return; }
    "$PY" - "$1" <<'EOF' && ok || ko "$1: report.json's PQ differs from avps eval pq on its output"
import json, sys
end = sys.argv[1]
got = json.load(open("r1/report.json"))["ends"][end]
want = json.load(open("pq_%s.json" % end))
sys.exit(0 if got == want else 1)
EOF
}
end_pq fusion r1/panoptic.json
end_pq e_ups r1/ends/e_ups.json
end_pq lwl_htc r1/ends/lwl_htc.json

# ---- panopticapi's reading: every JSON segment in the PNG and every PNG id in the JSON
"$PY" - <<'EOF' && ok || ko "panoptic.json and its PNGs disagree"
import json, sys
import numpy as np
from PIL import Image
pan = json.load(open("r1/panoptic.json"))
assert [a["image_id"] for a in pan["annotations"]] == [a["image_id"] for a in json.load(open("w/val.json"))["annotations"]]
for a in pan["annotations"]:
    rgb = np.array(Image.open("r1/panoptic/" + a["file_name"]).convert("RGB"), dtype=np.uint32)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    seg = {s["id"]: s for s in a["segments_info"]}
    present = set(np.unique(ids).tolist()) - {0}
    if present != set(seg):
        sys.exit(1)
    for i, s in seg.items():
        if int((ids == i).sum()) != s["area"]:
            sys.exit(1)
EOF

# ---- --resume after ranks killed midway: the same report, with any number of ranks
AVPS_TEST_DIE_AFTER=2 $MPIRUN 2 "$AVPS" run c.json --out k --threads 1 --quiet >/dev/null 2>&1 &&
    ko "the killed run exited 0"
[ -e k/report.json ] && ko "a killed run left a report" || ok
n_done=$(cat k/journal/*.log 2>/dev/null | wc -l)
[ "$n_done" -ge 1 ] && [ "$n_done" -lt 10 ] && ok || ko "journal after the kill holds $n_done images, not 1..9"
"$AVPS" run c.json --out k --quiet 2>/dev/null && ko "a second run into a used folder without --resume" || ok
$MPIRUN 3 "$AVPS" run c.json --out k --resume --threads 1 --quiet || ko "resume with 3 ranks"
cmp -s r1/report.json k/report.json && ok || ko "resumed report.json differs"
cmp -s r1/panoptic.json k/panoptic.json && diff -r r1/panoptic k/panoptic >/dev/null && ok ||
    ko "resumed panoptic output differs"
ls k k/panoptic k/work | grep -q '\.tmp\.' && ko "temporaries left after resume" || ok
# a record lost (a full disk, a deleted file) is redone; a resume with nothing missing is a no-op
rm -f k/work/3.rec
"$AVPS" run c.json --out k --resume --quiet || ko "resume after a lost record"
cmp -s r1/report.json k/report.json && ok || ko "report after a lost record differs"
grep -q '"images_this_run": 1,' k/timings.json && ok || ko "a lost record: not exactly one image redone"
# the reports stand or fall together: with OUT/figures a file the figures cannot be put in
# place, after every report is written; none of them is, and no stage is left
cp -r k kf && rm -rf kf/figures && echo file >kf/figures && tmp_before=$(ls kf | grep '\.tmp\.')
for f in report.json table3.md timings.json report.html; do echo old >kf/$f; done
"$AVPS" run c.json --out kf --resume --quiet 2>err && ko "resume with OUT/figures a file exited 0" ||
    { grep -q "figures" err && ok || ko "OUT/figures a file: $(cat err)"; }
for f in report.json table3.md timings.json report.html figures; do
    [ "$(cat kf/$f)" = "$([ $f = figures ] && echo file || echo old)" ] && ok || ko "a failed report stage replaced $f"
done
[ -e kf/figures.partial ] && ko "a failed report stage left figures.partial" || ok
[ "$(ls kf | grep '\.tmp\.')" = "$tmp_before" ] && ok || ko "a failed report stage left temporaries: $(ls kf | grep '\.tmp\.')"
config "$T/c2.json" ', "write_end_panoptic": false'
"$AVPS" run c2.json --out k --resume --quiet 2>err && ko "resume with another config" ||
    { grep -q "another config" err && ok || ko "resume with another config: $(cat err)"; }

# ---- a class table given: calibration skipped, the same result
sed 's#"fusion": {#"fusion": {"class_table": "r1/class_table.json", #' c.json >ct.json
"$AVPS" run ct.json --out ct --quiet || ko "run with a class table"
"$PY" -c "
import json; a = json.load(open('r1/report.json')); b = json.load(open('ct/report.json'))
raise SystemExit(0 if a['ends'] == b['ends'] else 1)" && ok || ko "a given class table gave other results"

# ---- a replay head gives what the sim head it stored gives; a failure on one rank ends the job
"$AVPS" export --gt-json w/val.json --head htc_uw_dc --backend sim --profile htc_uw_dc --seed 2 \
    --store-out store --results /dev/null >/dev/null 2>&1 || ko "export --store-out"
sed 's#{"name": "htc_uw_dc", "backend": "sim", "profile": "htc_uw_dc"}#{"name": "htc_uw_dc", "backend": "replay", "store": "store"}#' \
    ct.json >rp.json
"$AVPS" run rp.json --out rp --quiet || ko "run with a replay head"
"$PY" -c "
import json; a = json.load(open('ct/report.json')); b = json.load(open('rp/report.json'))
raise SystemExit(0 if a['ends'] == b['ends'] else 1)" && ok || ko "replay differs from sim"
victim=$(ls store | grep -m1 '\.json$' | grep -v head.json)
rm "store/$victim"
start=$(date +%s)
$MPIRUN 2 "$AVPS" run rp.json --out rf --threads 1 --quiet >/dev/null 2>err
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok || ko "a failing rank: exit $rc (124 = hung)"
grep -q "image ${victim%.json}" err && ok || ko "a failing rank: message lacks the image: $(cat err)"
[ "$(grep -c 'avps: error' err)" = 1 ] && ok || ko "a failing rank: the error is not printed once"
[ -e rf/report.json ] && ko "a failed run left a report" || ok

# ---- avps fuse: two ends and a class table give run's fused output, PNG for PNG
sed 's#"members": \["r50", "senet154_lsh"\], "weights": \[0.4, 1.3\]#"members": ["r50"]#' c.json >one.json
"$AVPS" run one.json --out one --quiet || ko "run with one UPS head"
$MPIRUN 2 "$AVPS" fuse --gt-json w/val.json --end r50=sim:r50:2 --end htc_uw_dc=sim:htc_uw_dc:2 \
    --class-table one/class_table.json --stuff-area-limit 256 --out-json fused.json --threads 1 || ko "avps fuse"
cmp -s one/panoptic.json fused.json && diff -r one/panoptic fused >/dev/null && ok ||
    ko "avps fuse differs from avps run's fusion"
"$AVPS" fuse --gt-json w/val.json --end a=sim:r50:2 --end b=sim:htc_uw_dc:2 --class-table one/class_table.json \
    --out-json nofuse.json 2>err && ko "fuse with ends the table does not name" ||
    { grep -q "unknown end" err && [ ! -e nofuse.json ] && [ ! -e nofuse ] && ok || ko "fuse, wrong ends: $(cat err)"; }

# ---- avps fuse of a label-map end with a probability end: said once (issue 12 item 8)
"$AVPS" export --gt-json w/val.json --head r50 --backend sim --profile r50 --seed 2 --results lab.json \
    --semantic-dir lab.sem >/dev/null &&
    "$AVPS" import --gt-json w/val.json --results lab.json --semantic-dir lab.sem --out lab --head r50 >/dev/null ||
    ko "export and import of a label-map end"
"$AVPS" fuse --gt-json w/val.json --end r50=replay:lab --end htc_uw_dc=sim:htc_uw_dc:2 \
    --class-table one/class_table.json --out-json mixed.json 2>err && [ -s mixed.json ] &&
    [ "$(grep -c 'avps: warning' err)" = 1 ] &&
    grep -q "mixes end r50, a label map (one-hot), with end htc_uw_dc's .*so end r50 decides every pixel" err && ok ||
    ko "fuse, label map and probabilities: $(cat err)"
"$AVPS" fuse --gt-json w/val.json --end r50=replay:lab --end htc_uw_dc=sim:htc_uw_dc:2 --ss-weights 1,0 \
    --class-table one/class_table.json --out-json mixed0.json 2>err && [ ! -s err ] && ok ||
    ko "fuse, the probability end at weight 0 warned: $(cat err)"
cmp -s fused.json mixed.json && ko "fuse with the label-map end gave the sim ends' result" || ok

# ---- avps tables: Table 3's rows are run's ends; the same bytes for any number of ranks
"$AVPS" tables c.json --out tb1 --threads 1 || ko "avps tables"
$MPIRUN 2 "$AVPS" tables c.json --out tb2 --threads 2 || ko "mpirun -np 2 avps tables"
cmp -s tb1/tables.json tb2/tables.json && cmp -s tb1/tables.md tb2/tables.md && ok ||
    ko "avps tables differs between 1 and 2 ranks"
"$PY" -c "
import json; a = json.load(open('r1/report.json'))['ends']; b = json.load(open('tb1/tables.json'))['rows']
raise SystemExit(0 if (a['e_ups'], a['lwl_htc'], a['fusion']) == (b['e_ups'], b['htc_uw_dc'], b['fusion']) else 1)" &&
    ok || ko "avps tables' Table 3 rows differ from avps run's ends"
grep -q '^| senet154_lsh |' tb1/tables.md && grep -q '^Table 2' tb1/tables.md && ok || ko "tables.md lacks a head's row"

# ---- bad configs: the key named, nothing written
expect_bad() { # WHAT PATTERN CONFIG_TEXT
    printf '%s\n' "$3" >bad.json
    rm -rf bad
    if "$AVPS" run bad.json --out bad >/dev/null 2>err; then
        ko "$1: exit 0"
    elif ! grep -q -- "$2" err; then
        ko "$1: message lacks '$2': $(cat err)"
    elif [ -e bad ]; then
        ko "$1: the output folder was made"
    else
        ok
    fi
}
good=$(cat c.json)
expect_bad "unknown key" '"fusion.combinr"' "${good/\"min_instances\"/\"combinr\": 1, \"min_instances\"}"
expect_bad "unknown top-level key" '"sead"' "${good/\"seed\"/\"sead\"}"
expect_bad "wrong type" '"fusion.min_instances" must be' "${good/\"min_instances\": 2/\"min_instances\": \"2\"}"
expect_bad "wrong type in a list" '"ensemble.weights\[1\]"' "${good/1.3]/\"x\"]}"
expect_bad "unknown member" '"ensemble.members\[0\]": no head is named "r5"' "${good/\[\"r50\"/[\"r5\"}"
expect_bad "unknown lwl_htc" '"lwl_htc": no head' "${good/\"lwl_htc\": \"htc_uw_dc\"/\"lwl_htc\": \"htc\"}"
expect_bad "bad backend" '"heads\[0\].backend"' "${good/\"backend\": \"sim\"/\"backend\": \"gpu\"}"
expect_bad "native head without weights" '"heads\[0\].profile" is required for a native head' \
    "${good/\"backend\": \"sim\", \"profile\": \"r50\"/\"backend\": \"native\"}"
expect_bad "native head without images" '"heads\[0\].store" is required for a native head' \
    "${good/\"backend\": \"sim\", \"profile\": \"r50\"/\"backend\": \"native\", \"profile\": \"w.safetensors\"}"
expect_bad "unknown profile" 'heads\[0\] (r50)' "${good/\"profile\": \"r50\"/\"profile\": \"nope\"}"
expect_bad "negative weights" '"ensemble.weights\[0\]"' "${good/0.4,/-1,}"
expect_bad "not JSON" 'not valid JSON' '{"seed": '
expect_bad "missing ground truth" 'w/nope.json' "${good/w\/val.json/w/nope.json}"
expect_bad "overlapping splits" 'also in the evaluation split' "${good/w\/heldout.json/w/val.json}"
expect_bad "bad class table" 'class_table' "${good/\"fusion\": {/\"fusion\": {\"class_table\": \"w/val.json\", }"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
