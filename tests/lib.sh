# lib.sh: the opening the CLI suites share; source it after `set -u`, with AVPS set.
#   lib_start NAME     a fresh temporary folder $T (kept when KEEP is set), the current one
#   ok / ko MESSAGE    a check passed / failed (ko prints "FAIL: MESSAGE")
#   lib_synth DIR N M  the suites' tiny synthetic world: N + M images of 96x64, seed 5
#   lib_finish         the summary line "N passed, N failed"; non-zero when any failed
#   MPIRUN             mpirun as the suites start it: bounded, oversubscribed, any user
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="timeout 120 mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

lib_start() { # NAME
    T=$(mktemp -d "/tmp/avps_$1_XXXXXX") || { echo "$1: no temporary folder"; exit 1; }
    trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
    cd "$T" || exit 1
}

lib_synth() { # DIR IMAGES HELDOUT
    "$AVPS" synth --out "$1" --images "$2" --heldout "$3" --size 96x64 --seed 5 >/dev/null || ko "synth $1"
}

lib_finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}
