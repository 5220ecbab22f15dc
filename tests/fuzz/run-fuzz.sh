#!/bin/sh
# run-fuzz.sh SECONDS HARNESS...: `make fuzz`. Runs each libFuzzer harness (build/fuzz/) for
# SECONDS, one after another, on a working corpus in build/fuzz/corpus/<harness> seeded
# from tests/fuzz/corpus/<harness> (new inputs stay there; copy the useful ones back).
# A finding leaves its crash-* file in build/fuzz/ and makes the exit status non-zero.
set -u
cd "$(dirname "$0")/../.."
secs=$1; shift
status=0
for h in "$@"; do
    work=build/fuzz/corpus/$h
    mkdir -p "$work"
    echo "fuzz: $h for ${secs}s" >&2
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build/fuzz/$h -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix=build/fuzz/"$h"- "$work" tests/fuzz/corpus/"$h" 2>build/fuzz/"$h".log
    rc=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' build/fuzz/"$h".log >&2
    echo "fuzz: $h: exit $rc, corpus $(ls "$work" | wc -l) files" >&2
    [ $rc = 0 ] || status=1
done
exit $status
