#!/usr/bin/env bash
# test_cli_ensemble.sh: an ensemble exported end to end (avps export --member): the same
# bytes on any number of ranks and threads; stored members give what simulated ones
# give (with members on different SS grids); an exported ensemble store replays to the
# same outputs; bad weights and member specs are refused with a message naming the
# member, and nothing is written.
# Usage: tests/test_cli_ensemble.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
T=$(mktemp -d /tmp/avps_ensemble_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$AVPS" synth --out "$T/w" --images 9 --heldout 1 --size 96x64 --seed 4 >/dev/null || ko "synth"
GT=$T/w/val.json
EUPS=(--member r50:r50:0.4 --member r101:r101:1.2 --member r101_bfp_lsh:r101_bfp_lsh:1.1
      --member senet154_lsh:senet154_lsh:1.3)
export_to() { # OUT_PREFIX EXTRA...
    local out=$1; shift
    "$AVPS" export --gt-json "$GT" --results "$out.json" --semantic-dir "$out.sem" "$@"
}
same_outputs() { # A B
    cmp -s "$1.json" "$2.json" && diff -r "$1.sem" "$2.sem" >/dev/null
}

# ---- E-UPS: the same bytes for 1 thread and for mpirun -np 2 with 2 threads each
export_to "$T/e1" --head e_ups "${EUPS[@]}" --threads 1 --store-out "$T/e.store" || ko "export e_ups"
[ -s "$T/e1.json" ] && grep -q '"score"' "$T/e1.json" && ok || ko "e_ups: no instances written"
$MPIRUN 2 "$AVPS" export --gt-json "$GT" --head e_ups "${EUPS[@]}" --threads 2 --results "$T/e2.json" \
    --semantic-dir "$T/e2.sem" >/dev/null || ko "mpirun -np 2 export e_ups"
same_outputs "$T/e1" "$T/e2" && ok || ko "e_ups: mpirun -np 2 differs from 1 thread"

# ---- the ensemble differs from each member (it is not one of them passed through)
export_to "$T/senet" --head senet154_lsh --backend sim --profile senet154_lsh || ko "export senet154_lsh"
cmp -s "$T/e1.json" "$T/senet.json" && ko "e_ups gave senet154_lsh's instances" || ok

# ---- the ensemble's store replays to the same outputs (soft masks kept as fp16)
export_to "$T/e_replay" --head e_ups --backend replay --store "$T/e.store" || ko "replay the e_ups store"
same_outputs "$T/e1" "$T/e_replay" && ok || ko "e_ups: replayed store differs"

# ---- members from stores give what the same members simulated give; r50 (logits,
# stride 4) and htc (probabilities, 0.75x stride 8) lie on different grids
for h in r50 htc; do
    "$AVPS" export --gt-json "$GT" --head $h --backend sim --profile $h --store-out "$T/$h.store" >/dev/null ||
        ko "store-out $h"
done
export_to "$T/mix_sim" --head mix --member r50:r50:1 --member htc:htc:2 || ko "export r50+htc (sim)"
export_to "$T/mix_store" --head mix --member-store "r50:$T/r50.store:1" --member-store "htc:$T/htc.store:2" ||
    ko "export r50+htc (stores)"
same_outputs "$T/mix_sim" "$T/mix_store" && ok || ko "stored members differ from simulated ones"

# ---- bad input: an error naming the member; no results file left behind
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2; shift 2
    rm -f "$T/bad.json"
    if "$AVPS" export --gt-json "$GT" --head e --results "$T/bad.json" --threads 1 "$@" >/dev/null 2>"$T/err"; then
        ko "$what: exit 0"
    elif ! grep -q -- "$pattern" "$T/err"; then
        ko "$what: message lacks '$pattern': $(cat "$T/err")"
    elif [ -e "$T/bad.json" ] || ls "$T"/bad.json.tmp* >/dev/null 2>&1; then
        ko "$what: a results file was left behind"
    else
        ok
    fi
}
expect_error "negative weight" "member r101: weight -1" --member r50:r50:1 --member r101:r101:-1
expect_error "all weights zero" "every weight is 0" --member r50:r50:0 --member r101:r101:0
expect_error "weight not a number" "--member.*x" --member r50:r50:x
expect_error "member without a weight" "NAME:PROFILE:WEIGHT" --member r50:r50
expect_error "unknown profile" "head zz" --member r50:r50:1 --member zz:no_such_profile:1
expect_error "member store missing" "head s" --member r50:r50:1 --member-store "s:$T/none:1"
expect_error "group IoU out of range" "IoU thresholds" --member r50:r50:1 --group-iou 1.5
expect_error "members and --backend" "--backend" --member r50:r50:1 --backend sim

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
