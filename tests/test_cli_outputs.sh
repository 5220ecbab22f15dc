#!/usr/bin/env bash
# test_cli_outputs.sh: where an output option writes (issue 12 item 9, docs/formats.md
# "Output paths"): a regular file is replaced through a temporary file and rename, a
# symbolic link is followed and its target replaced, a character device, a FIFO, "-" and
# /dev/stdout are written in place (a device stays a device), a folder is refused, and
# /dev/full gives a write error and a non-zero exit. As root, and as nobody where
# setpriv is there.
# Usage: tests/test_cli_outputs.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
FIX=$(cd "$(dirname "$0")/fixtures/pq" && pwd)
T=$(mktemp -d /tmp/avps_outputs_XXXXXX)
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1 # an old binary writes "--json -" into a file named "-" here
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
d=$(ls -d "$FIX"/*/ | head -1)
cp -r "$d" "$T/in" && chmod -R a+rX "$T/in"
# Device nodes of our own: a binary that replaces what it writes must not take the
# machine's /dev/null and /dev/full with it.
NULLDEV=/dev/null FULLDEV=/dev/full
if [ "$(id -u)" = 0 ] && mknod -m 666 "$T/null" c 1 3 && mknod -m 666 "$T/full" c 1 7; then
    NULLDEV=$T/null FULLDEV=$T/full
fi

cases() { # WHO PREFIX...: every case, run as WHO
    local who=$1; shift
    local w=$T/$who; mkdir -p "$w"; chmod 777 "$w"
    "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$w/ref.json" >/dev/null ||
        { ko "$who: plain file"; return; }
    [ -f "$w/ref.json" ] && ok || ko "$who: no file written"
    # symbolic link: followed, the link stays a link
    echo old >"$w/target.json"; ln -sf target.json "$w/link.json"
    "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$w/link.json" >/dev/null &&
        [ -L "$w/link.json" ] && cmp -s "$w/target.json" "$w/ref.json" && ok || ko "$who: symlink not followed"
    ln -sf missing.json "$w/dangling.json"
    "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$w/dangling.json" >/dev/null &&
        [ -L "$w/dangling.json" ] && cmp -s "$w/missing.json" "$w/ref.json" && ok || ko "$who: dangling symlink"
    # - and /dev/stdout (a link of our own, as Linux makes it): standard output, a file here
    ln -sf /proc/self/fd/1 "$w/dev-stdout"
    for s in - "$w/dev-stdout"; do
        "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$s" >"$w/stdout.txt" &&
            grep -q '"pq"' "$w/stdout.txt" && [ -L "$w/dev-stdout" ] && ok || ko "$who: --json $s"
    done
    # a FIFO, read by cat
    mkfifo "$w/fifo" && chmod 666 "$w/fifo"
    timeout 20 cat "$w/fifo" >"$w/fifo.out" &
    local cat_pid=$!
    "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$w/fifo" >/dev/null
    local rc=$?
    wait $cat_pid
    [ $rc = 0 ] && [ -p "$w/fifo" ] && cmp -s "$w/fifo.out" "$w/ref.json" && ok || ko "$who: FIFO"
    # character devices: /dev/null written, /dev/full a write error; both stay devices
    "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$NULLDEV" >/dev/null &&
        [ -c "$NULLDEV" ] && ok || ko "$who: /dev/null"
    if "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$FULLDEV" >/dev/null 2>"$w/err"; then
        ko "$who: /dev/full exited 0"
    else
        grep -q "$FULLDEV: write error: No space left on device" "$w/err" && [ -c "$FULLDEV" ] && ok ||
            ko "$who: /dev/full: $(cat "$w/err"); $(ls -l "$FULLDEV")"
    fi
    # a folder: refused, left alone
    mkdir -p "$w/dir"
    if "$@" "$AVPS" eval pq --gt-json "$T/in/gt.json" --pred-json "$T/in/pred.json" --json "$w/dir" >/dev/null 2>"$w/err"; then
        ko "$who: a folder accepted"
    else
        grep -q "is a folder" "$w/err" && [ -d "$w/dir" ] && ok || ko "$who: folder: $(cat "$w/err")"
    fi
    ls "$w" | grep -q '\.tmp\.' && ko "$who: temporary files left" || ok
}

cases root
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    cases nobody setpriv --reuid=65534 --regid=65534 --clear-groups
else
    echo "SKIP: no setpriv or not root: the plain-user cases did not run"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
