#!/usr/bin/env bash
# test_cli_report.sh: report.html of `avps run` and `avps tables` (issue 15 item 10), as a
# person sees it: on a tiny synthetic world whose category and head names need escaping,
# the page holds every row of Table 3 (run) and Tables 1-3 (tables), every per-class row
# with its category name and the class table, as report.json / tables.json /
# class_table.json give them; the figures in OUT/figures are embedded by name; the page is
# labelled a simulation. Then headless Chromium (Debian's) loads it from disk: the same
# rows must be in the DOM it builds, and its screenshot must not be blank. Without
# Chromium the browser half prints SKIP and counts as failed, never as passed.
# Usage: tests/test_cli_report.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
PY=${AVPS_PYTHON:-/usr/bin/python3}
AVPS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
lib_start report
check() { # WHAT HTML OUT KIND [SHOT]: report_dom_check.py's mismatches are the failure
    local what=$1; shift
    local msg
    msg=$("$PY" "$HERE/report_dom_check.py" "$1" "$2" "$T/w/val.json" "$3" ${4:+"$4"} 2>&1) && ok ||
        ko "$what: $(printf '%s' "$msg" | head -5)"
}

lib_synth w 8 8
# names a page must escape: markup, an ampersand, quotes; a control byte it leaves out
"$PY" - <<'EOF' || ko "renaming categories"
import json
for f in ("w/val.json", "w/heldout.json"):
    d = json.load(open(f))
    d["categories"][0]["name"] = "pe<b>rson</b>\x01 & \"co'"
    d["categories"][-1]["name"] = "<script>alert(1)</script>"
    json.dump(d, open(f, "w"))
EOF
cat >c.json <<'EOF'
{
  "seed": 2,
  "datasets": {"heldout": {"gt_json": "w/heldout.json"}, "eval": {"gt_json": "w/val.json"}},
  "heads": [
    {"name": "r50<i>&amp;", "backend": "sim", "profile": "r50"},
    {"name": "senet154_lsh", "backend": "sim", "profile": "senet154_lsh"},
    {"name": "htc_uw_dc", "backend": "sim", "profile": "htc_uw_dc"}
  ],
  "ensemble": {"members": ["r50<i>&amp;", "senet154_lsh"], "weights": [0.4, 1.3]},
  "lwl_htc": "htc_uw_dc",
  "fusion": {"min_instances": 2, "stuff_area_limit": 256}
}
EOF
"$AVPS" run c.json --out run --threads 2 --quiet || ko "run"
"$AVPS" tables c.json --out tab --threads 2 --progress none >/dev/null || ko "tables"
for k in run tab; do
    [ -s $k/report.html ] && ok || ko "$k: no report.html"
    ls $k | grep -q '\.tmp\.' && ko "$k: a temporary file is left" || ok
done
check "run: report.html" run/report.html run run
check "tables: report.html" tab/report.html tab tables
# the figures avps run and tables write (mpi/report_figures.c) are embedded by name
for k in run tab; do
    for f in class_table pq_per_class_e_ups pq_per_class_lwl_htc pq_per_class_fusion; do
        [ -s $k/figures/$f.svg ] && grep -q "<img src=\"figures/$f.svg\"" $k/report.html && ok ||
            ko "$k: figures/$f.svg is not in the page"
    done
done
# the names are text, not markup
grep -q '<script>\|<b>rson\|<i>&amp;' run/report.html tab/report.html && ko "a name went into the page unescaped" || ok
grep -q 'r50&lt;i&gt;&amp;amp;' run/report.html && ok || ko "run: the head name is not escaped as text"

# ---- the README's picture (docs/figure4-demo.png, what `make demo` draws with avps show):
# it opens, is under 300 KB, is not blank, and has the width avps show gives five columns
# at --cell-width 200 (drawn here on the tiny world). Not compared pixel for pixel: that
# would need the whole demo (200 images) in make test and would tie the test to this
# FreeType's glyphs; scripts/demo redraws it, the same bytes run after run.
PIC=$HERE/../docs/figure4-demo.png
"$AVPS" show --gt-json w/val.json --column "E-UPS=run/panoptic.json" --column "LWL-HTC=run/panoptic.json" \
    --column "two-level fusion=run/panoptic.json" --cell-width 200 --progress none --out fig4.png || ko "show"
msg=$("$PY" - "$PIC" fig4.png <<'EOF2' 2>&1
import os, sys
from PIL import Image
pic, here = Image.open(sys.argv[1]).convert("RGB"), Image.open(sys.argv[2])
colors = pic.getcolors(maxcolors=1 << 20) or []
top = max(n for n, c in colors) if colors else 0
w, h = pic.size
if os.path.getsize(sys.argv[1]) >= 300 * 1024: print("over 300 KB")
if len(colors) < 64 or top > 0.6 * w * h: print("looks blank: %d colours, the commonest on %d of %d pixels" % (len(colors), top, w * h))
if w != here.size[0]: print("width %d, avps show draws five columns %d wide" % (w, here.size[0]))
EOF2
)
[ -z "$msg" ] && ok || ko "docs/figure4-demo.png: $msg"

# ---- in a real browser
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "SKIP: no chromium (scripts/setup-deps installs Debian's); the browser checks did not run"
    ko "browser checks skipped"
else
    flags="--headless --disable-gpu --no-first-run --hide-scrollbars --user-data-dir=$T/profile"
    [ "$(id -u)" = 0 ] && flags="$flags --no-sandbox"
    for k in run tab; do
        kind=$([ $k = run ] && echo run || echo tables)
        # one start per page (each costs seconds): the DOM it built and its screenshot, of one load
        # shellcheck disable=SC2086
        timeout 60 "$CHROMIUM" $flags --window-size=1000,1200 --screenshot="$T/$k.png" --dump-dom \
            "file://$T/$k/report.html" >$k.dom 2>$k.err || ko "$k: chromium --dump-dom --screenshot failed: $(tail -2 $k.err)"
        grep -q '<tbody>' $k.dom && ok || ko "$k: the browser's DOM has no tables"
        [ -s $k.png ] && ok || ko "$k: chromium wrote no screenshot"
        check "$k: the browser's DOM and screenshot" $k.dom $k $kind $k.png
    done
fi
lib_finish
