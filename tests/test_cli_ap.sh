#!/usr/bin/env bash
# test_cli_ap.sh: `avps eval ap` and `avps convert` end to end: parity with pycocotools
# on the reference cases, the same bytes under mpirun -np 3, and bad input refused with
# a message naming the file, the image and the item.
# Usage: tests/test_cli_ap.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/tests/fixtures
SHARED=${AVPS_SHARED:-$ROOT/../shared}/reference
CMP=$ROOT/build/tests/json_compare
T=$(mktemp -d /tmp/avps_ap_XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# ---- parity: every synthetic case, and the real COCO case when ../shared is there
cases=("$FIX"/ap/*/)
[ -d "$SHARED/ap/coco_val2014_100" ] && cases+=("$SHARED/ap/coco_val2014_100/")
for d in "${cases[@]}"; do
    d=${d%/}; name=$(basename "$d")
    if "$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --json "$T/$name.json" >/dev/null; then
        if "$CMP" "$d/expected.json" "$T/$name.json"; then ok; else ko "parity $name"; fi
    else
        ko "eval ap $name exited non-zero"
    fi
done
echo '{"stats": {"AP": 0.3195452758576433}}' > "$T/headline.json"
[ -f "$T/coco_val2014_100.json" ] && { "$CMP" --exact "$T/headline.json" "$T/coco_val2014_100.json" && ok ||
    ko "coco_val2014_100: AP is not 0.3195452758576433 to the bit"; }

# ---- the same bytes for any number of ranks and threads
d="$FIX/ap/synthetic_1"
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --json "$T/one.json" --threads 1 >/dev/null || ko "threads 1"
$MPIRUN 3 "$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --json "$T/np3.json" --threads 2 >/dev/null ||
    ko "mpirun -np 3 eval ap"
cmp -s "$T/one.json" "$T/np3.json" && ok || ko "mpirun -np 3: report differs"
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --iou-type bbox --json "$T/bbox.json" >/dev/null &&
    grep -q '"AP": ' "$T/bbox.json" && ok || ko "--iou-type bbox"

# ---- results parsed on threads: the same report and the same first error as on one thread
d="$FIX/ap/synthetic_1"
/usr/bin/python3 - "$d/dt.json" "$T" <<'PY'
import json, sys
dt = json.load(open(sys.argv[1]))
big = (dt * (2000 // len(dt) + 1))[:2000]
def dump(name, items, tail=""):
    with open(f"{sys.argv[2]}/{name}", "w") as f:
        f.write("[\n" + ",\n".join(items) + tail + "\n]\n")
items = [json.dumps(o) for o in big]
dump("big.json", items)
bad = list(items)
bad[1900] = json.dumps(dict(big[1900], image_id=-7))
dump("late_bad.json", bad, ",")  # an image error in a late chunk, then a trailing comma
bad[300] = items[300].replace('"score": ', '"score": NaN, "x": ')
dump("two_bad.json", bad)        # a syntax error in an early chunk before it
PY
"$AVPS" eval ap --gt "$d/gt.json" --dt "$T/big.json" --json "$T/big1.json" --eval-out "$T/big1.npz" --threads 1 \
    >/dev/null || ko "big: threads 1"
"$AVPS" eval ap --gt "$d/gt.json" --dt "$T/big.json" --json "$T/big4.json" --eval-out "$T/big4.npz" --threads 4 \
    >/dev/null || ko "big: threads 4"
cmp -s "$T/big1.json" "$T/big4.json" && ok || ko "results on 4 threads: report differs from 1 thread"
# classes accumulated on 4 threads (2000 detections make 4 chunks): the same arrays, byte for byte
cmp -s "$T/big1.npz" "$T/big4.npz" && ok || ko "classes accumulated on 4 threads: --eval-out differs from 1 thread"
for f in late_bad two_bad; do
    "$AVPS" eval ap --gt "$d/gt.json" --dt "$T/$f.json" --threads 1 >/dev/null 2>"$T/$f.1" && ko "$f: threads 1 exited 0"
    "$AVPS" eval ap --gt "$d/gt.json" --dt "$T/$f.json" --threads 4 >/dev/null 2>"$T/$f.4" && ko "$f: threads 4 exited 0"
    cmp -s "$T/$f.1" "$T/$f.4" && ok || ko "$f: threads 4 says '$(head -c 300 "$T/$f.4")', 1 thread '$(head -c 300 "$T/$f.1")'"
done
grep -qF "late_bad.json: result 1900: image -7 is not among the images" "$T/late_bad.4" && ok ||
    ko "late_bad: $(head -c 300 "$T/late_bad.4")"
grep -qF "two_bad.json: result 300: malformed JSON near line 302" "$T/two_bad.4" && ok ||
    ko "two_bad: $(head -c 300 "$T/two_bad.4")"

# ---- ground-truth masks rasterised on threads: the same report and the same first error
/usr/bin/python3 - "$d/gt.json" "$T" <<'PY'
import copy, json, sys
gt = json.load(open(sys.argv[1]))
anns = []
for r in range(8):
    for a in gt["annotations"]:
        b = copy.deepcopy(a)
        b["id"] = 100000 * (r + 1) + a["id"]
        anns.append(b)
def dump(name, items):
    json.dump(dict(gt, annotations=items), open(f"{sys.argv[2]}/{name}", "w"))
dump("gt_big.json", anns)
polys = [i for i, a in enumerate(anns) if isinstance(a["segmentation"], list)]
late, later = polys[-10], polys[-5]
bad = copy.deepcopy(anns)
bad[late]["segmentation"] = [[1, 1, 3e9, 2, 25, 40]]  # a mask error in the last chunk
del bad[later]["iscrowd"]                              # then a record error after it
dump("gt_late_mask.json", bad)
del bad[polys[3]]["iscrowd"]                           # a record error before both
dump("gt_early_record.json", bad)
open(f"{sys.argv[2]}/gt_ids", "w").write(f"{anns[late]['id']} {anns[polys[3]]['id']}\n")
PY
read -r late_id early_id <"$T/gt_ids"
"$AVPS" eval ap --gt "$T/gt_big.json" --dt "$d/dt.json" --json "$T/gtb1.json" --threads 1 >/dev/null || ko "gt big: threads 1"
"$AVPS" eval ap --gt "$T/gt_big.json" --dt "$d/dt.json" --json "$T/gtb2.json" --threads 2 >/dev/null || ko "gt big: threads 2"
cmp -s "$T/gtb1.json" "$T/gtb2.json" && ok || ko "gt masks on 2 threads: report differs from 1 thread"
for f in gt_late_mask gt_early_record; do
    "$AVPS" eval ap --gt "$T/$f.json" --dt "$d/dt.json" --threads 1 >/dev/null 2>"$T/$f.1" && ko "$f: threads 1 exited 0"
    "$AVPS" eval ap --gt "$T/$f.json" --dt "$d/dt.json" --threads 2 >/dev/null 2>"$T/$f.2" && ko "$f: threads 2 exited 0"
    cmp -s "$T/$f.1" "$T/$f.2" && ok || ko "$f: threads 2 says '$(head -c 300 "$T/$f.2")', 1 thread '$(head -c 300 "$T/$f.1")'"
done
grep -qE "gt_late_mask.json: image [0-9]+: annotation $late_id: the segmentation has a coordinate that is not finite" \
    "$T/gt_late_mask.2" && ok || ko "gt_late_mask: $(head -c 300 "$T/gt_late_mask.2")"
grep -qE "gt_early_record.json: image [0-9]+: annotation $early_id: \"iscrowd\" is missing" "$T/gt_early_record.2" && ok ||
    ko "gt_early_record: $(head -c 300 "$T/gt_early_record.2")"

# ---- ground truth read one annotation object at a time: any key order and layout gives
# the same report; errors are the whole-file reader's, at positions in the whole file
/usr/bin/python3 - "$T/gt_big.json" "$T" <<'PY'
import json, sys
gt = json.load(open(sys.argv[1]))
out = sys.argv[2]
def put(name, text):
    open(f"{out}/{name}", "w", newline="").write(text)
info = {"description": "keys in another order", "nested": [[{"a": [1, 2, {"b": None}]}]], "ok": True}
rev = {"annotations": gt["annotations"], "info": info, "categories": gt["categories"], "images": gt["images"]}
put("gt_order.json", json.dumps(rev, indent=1))
put("gt_compact.json", json.dumps(rev, separators=(",", ":")))
put("gt_crlf.json", json.dumps(rev, indent=1).replace("\n", "\r\n") + "\r\n")
# a repeated key: the first is the one read (as before; Python's json would keep the last)
dup = json.dumps(gt, indent=1)[:-2] + ',\n "annotations": ' + json.dumps(gt["annotations"][:10]) + '\n}'
put("gt_dup.json", dup)
# a syntax error inside a late annotation object, named at its line and column
text = json.dumps(rev, indent=1)
k = len(gt["annotations"]) - 3
key = '"id": %d,' % gt["annotations"][k]["id"]
at = text.index(key) + len('"id": ')
bad = text[:at] + "NaN" + text[at + len(str(gt["annotations"][k]["id"])):]
put("gt_syntax.json", bad)
line, col = bad[:at].count("\n") + 1, at - bad.rfind("\n", 0, at)
# a record error early in the annotations and a syntax error in a value after them: the
# syntax error is the one reported (the whole file is read before any record)
early = dict(rev, annotations=[dict(a) for a in gt["annotations"]])
early["annotations"][5]["image_id"] = -99
t2 = json.dumps(early, indent=1)
i2 = t2.index('"ok": true') + len('"ok": ')
put("gt_late_syntax.json", t2[:i2] + "tru" + t2[i2 + 4:])
l2, c2 = t2[:i2].count("\n") + 1, i2 - t2.rfind("\n", 0, i2)
put("gt_early_image.json", t2)
# a syntax error in a value nobody reads, the rest well formed: refused all the same
i3 = text.index('"ok": true') + len('"ok": ')
put("gt_info_syntax.json", text[:i3] + "tru" + text[i3 + 4:])
l3, c3 = text[:i3].count("\n") + 1, i3 - text.rfind("\n", 0, i3)
open(f"{out}/gt_pos", "w").write(f"{line} {col} {l2} {c2} {l3} {c3}\n")
PY
read -r syn_line syn_col late_line late_col info_line info_col <"$T/gt_pos"
for f in gt_order gt_compact gt_crlf gt_dup; do
    for th in 1 2; do
        "$AVPS" eval ap --gt "$T/$f.json" --dt "$d/dt.json" --json "$T/$f.$th.out" --threads $th >/dev/null &&
            cmp -s "$T/gtb1.json" "$T/$f.$th.out" && ok || ko "ground truth $f, $th threads: report differs"
    done
done
for th in 1 2; do
    "$AVPS" eval ap --gt "$T/gt_syntax.json" --dt "$d/dt.json" --threads $th >/dev/null 2>"$T/gt_syntax.$th" &&
        ko "gt_syntax: exited 0"
    grep -qF "gt_syntax.json: malformed JSON near line $syn_line, column $syn_col" "$T/gt_syntax.$th" && ok ||
        ko "gt_syntax, $th threads: $(head -c 300 "$T/gt_syntax.$th"), not line $syn_line, column $syn_col"
    "$AVPS" eval ap --gt "$T/gt_late_syntax.json" --dt "$d/dt.json" --threads $th >/dev/null 2>"$T/gt_ls.$th" &&
        ko "gt_late_syntax: exited 0"
    grep -qF "gt_late_syntax.json: malformed JSON near line $late_line, column $late_col" "$T/gt_ls.$th" && ok ||
        ko "gt_late_syntax, $th threads: $(head -c 300 "$T/gt_ls.$th"), not line $late_line, column $late_col"
    "$AVPS" eval ap --gt "$T/gt_info_syntax.json" --dt "$d/dt.json" --threads $th >/dev/null 2>"$T/gt_is.$th" &&
        ko "gt_info_syntax: exited 0"
    grep -qF "gt_info_syntax.json: malformed JSON near line $info_line, column $info_col" "$T/gt_is.$th" && ok ||
        ko "gt_info_syntax, $th threads: $(head -c 300 "$T/gt_is.$th"), not line $info_line, column $info_col"
    "$AVPS" eval ap --gt "$T/gt_early_image.json" --dt "$d/dt.json" --threads $th >/dev/null 2>"$T/gt_ei.$th" &&
        ko "gt_early_image: exited 0"
    grep -qF "gt_early_image.json: annotations 5: image -99 is not among the images" "$T/gt_ei.$th" && ok ||
        ko "gt_early_image, $th threads: $(head -c 300 "$T/gt_ei.$th")"
done

# ---- bad input: non-zero exit, one message naming file and image, no report
expect_error() { # NAME GT DT PATTERN...
    local name=$1 gt=$2 dt=$3; shift 3
    rm -f "$T/err.json"
    if "$AVPS" eval ap --gt "$gt" --dt "$dt" --json "$T/err.json" >/dev/null 2>"$T/err.txt"; then
        ko "$name: exited 0"; return; fi
    local p
    for p in "$@"; do
        grep -qF -- "$p" "$T/err.txt" || { ko "$name: message lacks '$p': $(head -c 300 "$T/err.txt")"; return; }
    done
    [ -e "$T/err.json" ] && { ko "$name: a report was written"; return; }
    ok
}
d="$FIX/ap/synthetic_0"
head -c 300 "$d/dt.json" > "$T/trunc.json"
expect_error "truncated results" "$d/gt.json" "$T/trunc.json" "trunc.json" "malformed JSON"
# results lists that Python's json refuses are refused too, at the line and column of the fault
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))[:3]; s=json.dumps(a, indent=1)
open(sys.argv[2], "w").write(s[:-2] + ",\n]\n"); a[1]["score"] = float("nan")
open(sys.argv[3], "w").write(json.dumps(a, indent=1)); open(sys.argv[4], "w").write(json.dumps(a[:1]) + " x")' \
    "$d/dt.json" "$T/comma.json" "$T/nan.json" "$T/tail.json"
line=$(wc -l < "$T/comma.json")
expect_error "trailing comma in the results list" "$d/gt.json" "$T/comma.json" \
    "comma.json: result 3: malformed JSON near line $line, column 1"
line=$(grep -n NaN "$T/nan.json" | cut -d: -f1); col=$(grep NaN "$T/nan.json" | awk '{print index($0, "NaN")}')
expect_error "NaN score" "$d/gt.json" "$T/nan.json" "nan.json: result 1: malformed JSON near line $line, column $col"
col=$(wc -c < "$T/tail.json") # the x is the last byte
expect_error "text after the list" "$d/gt.json" "$T/tail.json" "tail.json: malformed JSON near line 1, column $col"
# any layout JSON allows gives the same report: compact, one result a line, CRLF, no space at all
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(json.dumps(a, separators=(",", ":")))
open(sys.argv[3], "w", newline="").write("\r\n[\r\n" + "\r\n ,\t".join(json.dumps(x) for x in a) + "\r\n]\r\n")' \
    "$d/dt.json" "$T/compact.json" "$T/crlf.json"
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --json "$T/lay0.json" >/dev/null || ko "layout: reference run"
for f in compact crlf; do
    "$AVPS" eval ap --gt "$d/gt.json" --dt "$T/$f.json" --json "$T/lay_$f.json" >/dev/null &&
        cmp -s "$T/lay0.json" "$T/lay_$f.json" && ok || ko "layout $f: report differs"
done
echo '[{"image_id": 424242, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "04"}}]' > "$T/noimg.json"
expect_error "result for an unknown image" "$d/gt.json" "$T/noimg.json" "noimg.json: result 0: image 424242 is not among the images"
img=$(grep -o '"id": [0-9]*' "$d/gt.json" | head -1 | grep -o '[0-9]*$')
hw=$(grep -o "\"id\": $img, [^}]*" "$d/gt.json" | head -1)
h=$(echo "$hw" | grep -o '"height": [0-9]*' | grep -o '[0-9]*$'); w=$(echo "$hw" | grep -o '"width": [0-9]*' | grep -o '[0-9]*$')
if [ -z "$h" ]; then # images may list width before height or use another layout: read the first dt instead
    h=$(grep -o '"size": \[[0-9]*, [0-9]*\]' "$d/dt.json" | head -1 | grep -o '[0-9]*' | head -1)
fi
echo "[{\"image_id\": $img, \"category_id\": 1, \"score\": 0.5, \"segmentation\": {\"size\": [$h, ${w:-1}], \"counts\": \"~~~\"}}]" > "$T/badrle.json"
expect_error "malformed counts string" "$d/gt.json" "$T/badrle.json" "badrle.json: image $img: result 0"
echo "[{\"image_id\": $img, \"category_id\": 1, \"segmentation\": {\"size\": [1, 1], \"counts\": \"01\"}}]" > "$T/noscore.json"
expect_error "missing score" "$d/gt.json" "$T/noscore.json" "image $img: result 0: \"score\" is missing"
expect_error "missing file" "$T/none.json" "$d/dt.json" "none.json: cannot open"
sed 's/"iscrowd": 0/"iscrowd": 7/' "$d/gt.json" > "$T/badcrowd.json"
expect_error "iscrowd not 0 or 1" "$T/badcrowd.json" "$d/dt.json" "badcrowd.json: image" "\"iscrowd\" is missing or not 0 or 1"
"$AVPS" eval ap --gt "$d/gt.json" --dt "$d/dt.json" --iou-type mask >/dev/null 2>&1 && ko "--iou-type mask accepted" || ok

# ---- panoptic ground truth as instances: scored against itself, AP is 1
P="$FIX/pq/synthetic_0"
if "$AVPS" convert panoptic-to-instances --gt-json "$P/gt.json" --out "$T/inst.json" >/dev/null; then ok; else ko "convert"; fi
things=$(grep -o '"isthing": 1' "$P/gt.json" | wc -l)
cats=$(grep -c '^  {"id": [0-9]*, "name"' "$T/inst.json")
[ "$cats" = "$things" ] && ok || ko "convert: $cats categories, the panoptic file has $things things"
sed -n 's/^  {"id": [0-9]*, \("image_id": [0-9]*, "category_id": [0-9]*\), "iscrowd": 0, .*\("segmentation": .*}\)}[,]*$/{\1, "score": 1, \2}/p' \
    "$T/inst.json" | paste -sd, | sed 's/^/[/; s/$/]/' > "$T/self.json"
if "$AVPS" eval ap --gt "$T/inst.json" --dt "$T/self.json" --json "$T/self_ap.json" >/dev/null; then
    grep -q '"AP": 1,' "$T/self_ap.json" && ok || ko "ground truth scored against itself: AP is not 1: $(head -c 200 "$T/self_ap.json")"
else
    ko "eval ap on converted instances"
fi
$MPIRUN 2 "$AVPS" convert panoptic-to-instances --gt-json "$P/gt.json" --out "$T/inst2.json" >/dev/null &&
    cmp -s "$T/inst.json" "$T/inst2.json" && ok || ko "convert under mpirun -np 2 differs"

# ---- warnings (issue 12 item 8): pycocotools' numbers kept, the user told once on stderr
W=$FIX/ap/synthetic_0
"$AVPS" eval ap --gt "$W/gt.json" --dt "$W/dt.json" --json "$T/w_ref.json" >/dev/null 2>"$T/w_err" || ko "warnings: reference"
[ -s "$T/w_err" ] && ko "warnings: a clean results file warned: $(cat "$T/w_err")" || ok
/usr/bin/python3 - "$W" "$T" <<'EOF'
import json, sys
w, t = sys.argv[1], sys.argv[2]
dt = json.load(open(w + "/dt.json"))
gt = json.load(open(w + "/gt.json"))
extra = dict(dt[3], category_id=999999)
json.dump(dt[:5] + [extra] + dt[5:] + [dict(dt[7], category_id=999998)], open(t + "/w_unknown.json", "w"))
json.dump([], open(t + "/w_empty.json", "w"))
boxes, polys = [], []
for a in gt["annotations"]:
    x, y, bw, bh = a["bbox"]
    r = {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.5 + (a["id"] % 7) / 16}
    boxes.append(r)
    polys.append(dict(r, segmentation=[[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]))
json.dump(boxes, open(t + "/w_boxes.json", "w"))
json.dump(polys, open(t + "/w_polys.json", "w"))
EOF
# a category the ground truth lacks: ignored as pycocotools does, counted, the first named
if "$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_unknown.json" --json "$T/w_unknown.out" >/dev/null 2>"$T/w_err"; then
    [ "$(grep -c warning "$T/w_err")" = 1 ] &&
        grep -q "w_unknown.json: 2 results have a category that is not in .*gt.json.*the first: image [0-9]*, result 5, category 999999" "$T/w_err" &&
        "$CMP" "$T/w_ref.json" "$T/w_unknown.out" && ok || ko "warnings: unknown category: $(cat "$T/w_err")"
    $MPIRUN 2 "$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_unknown.json" >/dev/null 2>"$T/w_err2" &&
        [ "$(grep -c warning "$T/w_err2")" = 1 ] && grep -q "result 5, category 999999" "$T/w_err2" && ok ||
        ko "warnings: unknown category, mpirun -np 2: $(cat "$T/w_err2")"
else
    ko "warnings: unknown category: exit non-zero: $(cat "$T/w_err")"
fi
# an empty list: evaluated (AP 0 where there are objects), said so
if "$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_empty.json" --json "$T/w_empty.out" >/dev/null 2>"$T/w_err"; then
    grep -q "w_empty.json: the results list is empty" "$T/w_err" && ok ||
        ko "warnings: empty list: $(cat "$T/w_err"); $(head -c 300 "$T/w_empty.out")"
else
    ko "warnings: empty list: exit non-zero: $(cat "$T/w_err")"
fi
# segm of results with boxes only: the boxes are the masks (loadRes), the same numbers as the box polygons
"$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_polys.json" --json "$T/w_polys.out" >/dev/null 2>"$T/w_err0" || ko "warnings: box polygons"
if "$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_boxes.json" --json "$T/w_boxes.out" >/dev/null 2>"$T/w_err"; then
    n=$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$T/w_boxes.json")
    grep -q "w_boxes.json: $n of $n results have a box but no \"segmentation\"; --iou-type segm evaluates their boxes as masks.*result 0)" "$T/w_err" &&
        [ ! -s "$T/w_err0" ] && "$CMP" "$T/w_polys.out" "$T/w_boxes.out" && ok || ko "warnings: boxes only: $(cat "$T/w_err")"
    "$AVPS" eval ap --gt "$W/gt.json" --dt "$T/w_boxes.json" --iou-type bbox >/dev/null 2>"$T/w_err" && [ ! -s "$T/w_err" ] && ok ||
        ko "warnings: boxes only, bbox: $(cat "$T/w_err")"
else
    ko "warnings: boxes only: exit non-zero: $(cat "$T/w_err")"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
