#!/usr/bin/env bash
# test_cli_calibrate.sh: `avps calibrate` end to end on a small synthetic world with two
# simulated ends: the table and report are written and are the same bytes alone and under
# mpirun -np 2; each end's per-class AP in the table equals `avps eval ap`'s per_class_AP
# for that end's exported results against the converted held-out ground truth, and the
# instance counts equal the converted ground truth's; the choices and the regret follow
# the rules from the scores; a replayed end gives its simulation's table; an ensemble end
# scores as its exported ensemble; with pq_th the per-class PQ equals `avps eval pq` on
# each end's export -> combine result; a given table is assessed with the same figures;
# overlapping splits (alone and under mpirun), an unknown end or category in a table and
# bad end specs are refused, leaving nothing on disk.
# Usage: tests/test_cli_calibrate.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
# Debian's Python: scripts/setup-deps installs its numpy and Pillow
PY=${AVPS_PYTHON:-/usr/bin/python3}
AVPS=$1
T=$(mktemp -d /tmp/avps_calibrate_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else ko "$what"; fi; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$AVPS" synth --out "$T/w" --images 20 --heldout 20 --size 96x64 --seed 3 >/dev/null || ko "synth"
H=$T/w/heldout.json V=$T/w/val.json
ENDS=(--end r50=sim:r50 --end htc=sim:htc)
calibrate() { "$AVPS" calibrate --heldout-json "$H" "${ENDS[@]}" "$@"; }

# ---- written, and the same bytes for 1 rank 1 thread and 2 ranks 2 threads
calibrate --eval-json "$V" --out "$T/t1.json" --report "$T/r1.json" --min-instances 2 --bootstrap 20 \
    --threads 1 >"$T/stdout" || ko "calibrate"
check "table written" test -s "$T/t1.json"
check "report written" test -s "$T/r1.json"
check "stdout names the regret" grep -q "regret (oracle - table)" "$T/stdout"
$MPIRUN 2 "$AVPS" calibrate --heldout-json "$H" "${ENDS[@]}" --eval-json "$V" --out "$T/t2.json" \
    --report "$T/r2.json" --min-instances 2 --bootstrap 20 --threads 2 >/dev/null || ko "mpirun -np 2 calibrate"
check "table: np 2 differs from np 1" cmp -s "$T/t1.json" "$T/t2.json"
check "report: np 2 differs from np 1" cmp -s "$T/r1.json" "$T/r2.json"
calibrate --eval-json "$V" --out "$T/t3.json" --report "$T/r3.json" --min-instances 2 --bootstrap 20 --seed 7 \
    >/dev/null || ko "calibrate --seed 7"
check "another bootstrap seed gave the same report" bash -c "! cmp -s '$T/r1.json' '$T/r3.json'"
check "the bootstrap seed changed the table" cmp -s "$T/t1.json" "$T/t3.json"

# ---- the scores against the project's evaluator, run on exported results
"$AVPS" convert panoptic-to-instances --gt-json "$H" --out "$T/inst.json" >/dev/null || ko "convert"
for e in r50 htc; do
    "$AVPS" export --gt-json "$H" --head $e --backend sim --profile $e --results "$T/$e.res.json" >/dev/null ||
        ko "export $e"
    "$AVPS" eval ap --gt "$T/inst.json" --dt "$T/$e.res.json" --json "$T/$e.ap.json" >/dev/null || ko "eval ap $e"
done
check "table scores, counts and choices agree with eval ap and the rules" "$PY" - "$T" <<'EOF'
import json, sys, collections
T = sys.argv[1]
t = json.load(open(T + "/t1.json"))
inst = json.load(open(T + "/inst.json"))
count = collections.Counter(a["category_id"] for a in inst["annotations"] if not a["iscrowd"])
bad = []
ap = {e: json.load(open("%s/%s.ap.json" % (T, e)))["per_class_AP"] for e in t["ends"]}
for c in t["classes"]:
    k = str(c["category_id"])
    for e in t["ends"]:
        want = None if ap[e][k] == -1 else ap[e][k]
        if c["score"][e] != want:
            bad.append("category %s end %s: %r != eval ap %r" % (k, e, c["score"][e], want))
    if c["n_heldout"] != count.get(c["category_id"], 0):
        bad.append("category %s: n_heldout %d != %d" % (k, c["n_heldout"], count.get(c["category_id"], 0)))
# the rules, recomputed: overall best by the mean over classes every end has a score for
rows = [c for c in t["classes"] if all(c["score"][e] is not None for e in t["ends"])]
means = [sum(c["score"][e] for c in rows) / len(rows) for e in t["ends"]]
best = t["ends"][max(range(len(means)), key=lambda i: (means[i], -i))]
if t["overall_best"] != best:
    bad.append("overall_best %s != %s" % (t["overall_best"], best))
for c in t["classes"]:
    s = [c["score"][e] for e in t["ends"]]
    fallback = c["n_heldout"] < t["min_instances"] or None in s
    want = best if fallback else t["ends"][max(range(len(s)), key=lambda i: (s[i], -i))]
    if c["end"] != want or c["fallback"] != fallback:
        bad.append("category %d: end %s fallback %s, want %s %s" % (c["category_id"], c["end"], c["fallback"], want, fallback))
if not any(c["fallback"] for c in t["classes"]) or all(c["fallback"] for c in t["classes"]):
    bad.append("the world should give both chosen and fallback classes")
if bad: print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
EOF

# ---- the regret from the report's own per-class evaluation scores
check "regret, means and gain follow from the per-class scores" "$PY" - "$T" <<'EOF'
import json, sys
T = sys.argv[1]
t = json.load(open(T + "/t1.json"))
r = json.load(open(T + "/r1.json"))["evaluation"]
end_of = {c["category_id"]: c["end"] for c in t["classes"]}
used = [c for c in r["classes"] if c["n_eval"] > 0 and None not in c["score"].values()]
mean = lambda f: sum(f(c) for c in used) / len(used)
table = mean(lambda c: c["score"][end_of[c["category_id"]]])
oracle = mean(lambda c: max(c["score"].values()))
ends = {e: mean(lambda c: c["score"][e]) for e in t["ends"]}
best = max(ends.values())
close = lambda a, b: abs(a - b) < 1e-12
ok = (r["classes_counted"] == len(used) and close(r["mean_table"], table) and close(r["mean_oracle"], oracle)
      and close(r["regret"], oracle - table) and close(r["gain_over_best_single"], table - best)
      and all(close(r["mean_end"][e], ends[e]) for e in ends) and r["regret"] >= 0)
sys.exit(0 if ok else 1)
EOF

# ---- a stored end replayed gives the table its simulation gives
"$AVPS" export --gt-json "$H" --head r50 --backend sim --profile r50 --store-out "$T/r50.store" >/dev/null ||
    ko "export --store-out"
calibrate --out "$T/tsim.json" --bootstrap 0 >/dev/null || ko "calibrate, sim ends"
"$AVPS" calibrate --heldout-json "$H" --end r50=replay:"$T/r50.store" --end htc=sim:htc --out "$T/trep.json" \
    --bootstrap 0 >/dev/null || ko "calibrate, a replay end"
check "a replayed end gives the sim's table" cmp -s "$T/tsim.json" "$T/trep.json"

# ---- an ensemble end: its per-class AP is that of `avps export --member ...` of the same members
"$AVPS" calibrate --heldout-json "$H" --end 'eups=ensemble:r50=sim:r50*0.4,r101=sim:r101*1.2' --end htc=sim:htc \
    --out "$T/te.json" --bootstrap 0 >/dev/null || ko "calibrate with an ensemble end"
"$AVPS" export --gt-json "$H" --head eups --member r50:r50:0.4 --member r101:r101:1.2 --results "$T/eups.json" \
    >/dev/null || ko "export the ensemble"
"$AVPS" eval ap --gt "$T/inst.json" --dt "$T/eups.json" --json "$T/eups.ap.json" >/dev/null || ko "eval ap eups"
check "ensemble end's scores agree with eval ap of the exported ensemble" "$PY" -c "
import json, sys
t = json.load(open('$T/te.json')); ap = json.load(open('$T/eups.ap.json'))['per_class_AP']
want = lambda k: None if ap[k] == -1 else ap[k]
sys.exit(0 if all(c['score']['eups'] == want(str(c['category_id'])) for c in t['classes']) else 1)"

# ---- pq_th: each end's own panoptic result (its instances and SS argmax through the
# heuristic combiner) scored per class; checked against export -> combine -> eval pq
calibrate --metric pq_th --out "$T/tp.json" --bootstrap 0 --threads 1 >/dev/null || ko "calibrate --metric pq_th"
$MPIRUN 2 "$AVPS" calibrate --heldout-json "$H" "${ENDS[@]}" --metric pq_th --out "$T/tp2.json" --bootstrap 0 \
    --threads 2 >/dev/null || ko "mpirun -np 2 calibrate --metric pq_th"
check "pq_th table: np 2 differs from np 1" cmp -s "$T/tp.json" "$T/tp2.json"
for e in r50 htc; do
    "$AVPS" export --gt-json "$H" --head $e --backend sim --profile $e --results "$T/$e.r.json" \
        --semantic-json "$T/$e.sem.json" >/dev/null || ko "export $e semantic"
    "$AVPS" combine --semantic "$T/$e.sem.json" --instances "$T/$e.r.json" --images "$H" --categories "$H" \
        --out-json "$T/$e.pan.json" >/dev/null || ko "combine $e"
    "$AVPS" eval pq --gt-json "$H" --pred-json "$T/$e.pan.json" --json "$T/$e.pq.json" >/dev/null || ko "eval pq $e"
done
check "pq_th scores and counts agree with eval pq of each end's combined result" "$PY" - "$T" <<'EOF'
import json, sys
T = sys.argv[1]
t = json.load(open(T + "/tp.json"))
bad = []
for e in t["ends"]:
    pc = json.load(open("%s/%s.pq.json" % (T, e)))["per_class"]
    for c in t["classes"]:
        v = pc[str(c["category_id"])]
        want = None if v["tp"] + v["fp"] + v["fn"] == 0 else v["pq"]
        if c["score"][e] != want or c["n_heldout"] != v["tp"] + v["fn"]:
            bad.append("end %s category %d: %r, %d != %r" % (e, c["category_id"], c["score"][e], c["n_heldout"], v))
if bad: print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
EOF

# ---- a given table assessed: the same evaluation figures as when it was chosen
calibrate --eval-json "$V" --table "$T/t1.json" --report "$T/rt.json" --bootstrap 0 >/dev/null || ko "--table"
check "an assessed table gives the figures of its calibration" "$PY" -c "
import json, sys
a = json.load(open('$T/r1.json'))['evaluation']; b = json.load(open('$T/rt.json'))['evaluation']
sys.exit(0 if a == b else 1)"

# ---- bad input: a message naming the item, nothing on disk
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2; shift 2
    rm -f "$T/bad.json" "$T/bad.report.json"
    if calibrate "$@" >/dev/null 2>"$T/err"; then
        ko "$what: exit 0"
    elif ! grep -q -- "$pattern" "$T/err"; then
        ko "$what: message lacks '$pattern': $(cat "$T/err")"
    elif ls "$T"/bad.json* "$T"/bad.report.json* >/dev/null 2>&1; then
        ko "$what: something was left on disk"
    else
        ok
    fi
}
first=$(grep -o '"image_id": [0-9]*' "$H" | head -1 | grep -o '[0-9]*$')
expect_error "overlapping splits" "image $first is in both" --eval-json "$H" --out "$T/bad.json" \
    --report "$T/bad.report.json"
rm -f "$T/bad.json"
if $MPIRUN 2 "$AVPS" calibrate --heldout-json "$H" "${ENDS[@]}" --eval-json "$H" --out "$T/bad.json" \
    >/dev/null 2>"$T/err"; then
    ko "overlapping splits under mpirun: exit 0"
else
    check "overlapping splits under mpirun: the message names the image" grep -q "image $first is in both" "$T/err"
    check "overlapping splits under mpirun: nothing written" bash -c "! ls '$T'/bad.json* >/dev/null 2>&1"
fi
sed 's/"htc"/"yolo"/g' "$T/t1.json" >"$T/unknown_end.json"
expect_error "unknown end in a table" "unknown_end.json: ends\[1\]: unknown end 'yolo'" --eval-json "$V" \
    --table "$T/unknown_end.json" --report "$T/bad.report.json"
sed '0,/"category_id": 1,/s//"category_id": 999,/' "$T/t1.json" >"$T/unknown_cat.json"
expect_error "unknown category in a table" "classes\[0\]: category 999 is unknown" --eval-json "$V" \
    --table "$T/unknown_cat.json" --report "$T/bad.report.json"
expect_error "bad end spec" "end 'x=ssim:r50'" --end x=ssim:r50 --out "$T/bad.json"
expect_error "two ends of one name" "two ends are named 'r50'" --end r50=sim:htc --out "$T/bad.json"
expect_error "unknown profile" "nosuch" --end z=sim:nosuch --out "$T/bad.json"
expect_error "negative ensemble weight" "member a: weight -1" --end 'x=ensemble:a=sim:r50*-1,b=sim:htc*1' \
    --out "$T/bad.json"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
