#!/usr/bin/env bash
# test_cli_figures.sh: the figures (issue 15 item 9) as a person and a script see them:
# avps run and avps tables write OUT/figures/ (class table, per-class PQ of each end) as
# SVG and PNG; the SVG's bars measure the numbers of class_table.json and report.json
# (PQ recomputed here from the counts), the PNG's bars are as long in pixels and in the
# series' colours; `avps eval ap --plot-pr` follows pycocotools' precision array; names
# with XML's special characters are escaped; a bad --plot-pr is refused before any work.
# Usage: tests/test_cli_figures.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
VPY=$ROOT/build/venv/bin/python
CHECK=$ROOT/tests/figures_check.py
. "$ROOT/tests/lib.sh"
lib_start fig
if ! $PY -c 'import numpy, PIL' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 has no numpy or Pillow: figures not checked"; ko "figures not checked"
    lib_finish; exit 1
fi

lib_synth w 10 8
# a category name with XML's special characters and a control byte XML cannot hold, in both splits
$PY - <<'PY'
import json
for f in ("w/val.json", "w/heldout.json"):
    d = json.load(open(f))
    for c in d["categories"]:
        if c["name"] == "person":
            c["name"] = 'per<s>on\x01 & "co\'s"'
    json.dump(d, open(f, "w"))
PY
cat >c.json <<'JSON'
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
  "fusion": {"min_instances": 2, "stuff_area_limit": 256}
}
JSON

# ---- avps run: the figures beside the report, measured against its JSON
"$AVPS" run c.json --out r --threads 2 --quiet || ko "run"
for f in class_table pq_per_class_e_ups pq_per_class_lwl_htc pq_per_class_fusion; do
    [ -s "r/figures/$f.svg" ] && [ -s "r/figures/$f.png" ] && ok || ko "run wrote no figures/$f.svg and .png"
done
out=$($PY "$CHECK" classtable r/figures r/class_table.json w/val.json 2>&1) && ok || ko "class table figure: $out"
for e in e_ups lwl_htc fusion; do
    out=$($PY "$CHECK" pq r/figures r/report.json w/val.json $e 2>&1) && ok || ko "per-class PQ figure of $e: $out"
done
# as an XML parser reads the figure: the name whole, less the control byte
out=$($PY - r/figures/class_table.svg <<'PY' 2>&1
import sys, xml.etree.ElementTree as ET
texts = [e.text for e in ET.parse(sys.argv[1]).iter("{http://www.w3.org/2000/svg}text") if e.get("class") == "category"]
if 'per<s>on & "co\'s"' not in texts:
    print("no category text reads 'per<s>on & \"co\'s\"': %s" % texts[:4])
PY
)
[ -z "$out" ] && ok || ko "the category name is not XML-escaped: $out"
ls r/figures | grep -q -v -E '\.(svg|png)$' && ko "a temporary was left in figures/: $(ls r/figures)" || ok

# ---- the checks can fail: a table whose scores are swapped does not match the figure
$PY - <<'PY'
import json
t = json.load(open("r/class_table.json"))
for c in t["classes"]:
    a, b = t["ends"]
    c["score"][a], c["score"][b] = c["score"][b], c["score"][a]
json.dump(t, open("swapped.json", "w"))
PY
$PY "$CHECK" classtable r/figures swapped.json w/val.json >/dev/null 2>&1 && ko "the check passes a figure that does not match" || ok

# ---- avps tables: the same figures under the same names
"$AVPS" tables c.json --out t --progress none >/dev/null || ko "tables"
for f in class_table pq_per_class_e_ups pq_per_class_lwl_htc pq_per_class_fusion; do
    cmp -s "r/figures/$f.svg" "t/figures/$f.svg" && cmp -s "r/figures/$f.png" "t/figures/$f.png" && ok ||
        ko "avps tables' figures/$f differs from avps run's"
done

# ---- avps calibrate --plot-class-table: the same figure from the table it writes
mkdir -p cal
for ext in svg png; do
    "$AVPS" calibrate --heldout-json w/heldout.json --end r50=sim:r50 --end htc=sim:htc --min-instances 2 \
        --out cal/table.json --plot-class-table cal/class_table.$ext >/dev/null || ko "calibrate --plot-class-table .$ext"
done
out=$($PY "$CHECK" classtable cal cal/table.json w/heldout.json 2>&1) && ok || ko "calibrate's class table figure: $out"
"$AVPS" calibrate --heldout-json w/heldout.json --end r50=sim:r50 --end htc=sim:htc --out cal/t2.json \
    --plot-class-table cal/t2.gif >/dev/null 2>err.txt && ko "--plot-class-table .gif accepted" ||
    { grep -q 'plot-class-table cal/t2.gif: the file must end in .svg or .png' err.txt && [ ! -e cal/t2.json ] && ok ||
        ko "--plot-class-table .gif: $(cat err.txt)"; }

# ---- eval ap --plot-pr against pycocotools' precision
d=$ROOT/tests/fixtures/ap/synthetic_1
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --plot-pr pr.svg >/dev/null &&
    "$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --plot-pr pr.png >/dev/null && ok || ko "eval ap --plot-pr"
if "$VPY" -c 'import pycocotools, PIL' 2>/dev/null; then
    out=$("$VPY" "$CHECK" pr pr.svg pr.png "$d/gt.json" "$d/dt.json" 2>&1) && ok || ko "PR curves: $out"
else
    echo "SKIP: build/venv has no pycocotools: PR curves not compared"; ko "PR curves not compared"
fi
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --plot-pr pr.pdf >/dev/null 2>err.txt && ko "--plot-pr .pdf accepted" ||
    { grep -q 'plot-pr pr.pdf: the file must end in .svg or .png' err.txt && [ ! -e pr.pdf ] && ok || ko "--plot-pr .pdf: $(cat err.txt)"; }
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --plot-pr nodir/pr.svg >/dev/null 2>err.txt && ko "--plot-pr into a missing folder accepted" ||
    { grep -q 'nodir' err.txt && ok || ko "--plot-pr nodir/: $(cat err.txt)"; }

lib_finish
