#!/usr/bin/env bash
# test_cli_show.sh: `avps show` as a person sees its PNG (issue 15 item 8), read back with
# Pillow: a stuff segment's inside has its category's colour blended over the neutral
# background (or over the photo), contours are white, the header and the class names are
# text (anti-aliased pixels of several greys where the titles are), the Figure-4 layout
# has one column per result plus image and ground truth and one row per image; --top N
# picks the images where the last column gains most PQ (checked against `avps eval pq`
# on each image alone) and draws what --images draws for them; semantic and instance
# columns; the same bytes under mpirun; bad input refused naming it, no PNG left.
# Usage: tests/test_cli_show.sh AVPS_BINARY   (prints only failures and the summary line)
set -u
AVPS=$1
PY=/usr/bin/python3
T=$(mktemp -d /tmp/avps_show_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
MPIRUN="timeout 120 mpirun --oversubscribe --bind-to none -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$T" || exit 1
if ! $PY -c 'import numpy, PIL' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 has no numpy or Pillow: pictures not checked"; ko "pictures not checked"
    echo "$passed passed, $failed failed"; exit 1
fi

"$AVPS" synth --out w --images 6 --heldout 6 --size 160x120 --seed 4 >/dev/null || ko "synth"
cat >c.json <<EOF
{
  "seed": 2,
  "datasets": {"heldout": {"gt_json": "w/heldout.json"}, "eval": {"gt_json": "w/val.json"}},
  "heads": [
    {"name": "r50", "backend": "sim", "profile": "r50"},
    {"name": "htc_uw_dc", "backend": "sim", "profile": "htc_uw_dc"}
  ],
  "ensemble": {"members": ["r50"]},
  "lwl_htc": "htc_uw_dc",
  "fusion": {"min_instances": 2}, "write_end_panoptic": true
}
EOF
"$AVPS" run c.json --out r --quiet || ko "run"
COLS=(--column E-UPS=r/ends/e_ups.json --column LWL-HTC=r/ends/lwl_htc.json --column "two-level fusion=r/panoptic.json")

# ---- one image, the ground truth as the only column, at its own size
"$AVPS" show --gt-json w/val.json --column truth=w/val.json --images 3 --no-gt --out one.png || ko "show one image"
check_py() { # WHAT SCRIPT ARGS...
    local what=$1; shift
    local out; out=$($PY "$@" 2>&1) && ok || ko "$what: $out"
}
cat >pixels.py <<'EOF'
# Shared by the checks: the cell of (row, column) in a picture laid out as avps show does.
import json, numpy as np
from PIL import Image
HEADER, GAP = 26, 4
def load(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)
def cell(img, row, col, w, h):
    y, x = HEADER + row * (h + GAP), col * (w + GAP)
    return img[y:y + h, x:x + w]
def blend(under, color, alpha):
    a = int(alpha * 256 + 0.5)
    return (np.asarray(under) * (256 - a) + np.asarray(color) * a) >> 8
def segments(gt_json, gt_dir, image_id):
    gt = json.load(open(gt_json))
    ann = [a for a in gt["annotations"] if a["image_id"] == image_id][0]
    png = np.asarray(Image.open(gt_dir + "/" + ann["file_name"]).convert("RGB")).astype(np.int64)
    ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
    cats = {c["id"]: c for c in gt["categories"]}
    return ids, [(s, cats[s["category_id"]]) for s in ann["segments_info"]]
def interior(ids, sid):
    m = ids == sid
    inner = m.copy()
    inner[1:] &= m[:-1]; inner[:-1] &= m[1:]; inner[:, 1:] &= m[:, :-1]; inner[:, :-1] &= m[:, 1:]
    return m, inner
def assert_fill(got, want, what):
    # the inside is the blended colour, except where a label (grey box, white text) lies
    match = np.abs(got - want).max(axis=1) <= 1
    rest = got[~match]
    assert match.mean() > 0.1 and (rest.max(axis=1) - rest.min(axis=1) <= 1).all(), (what, match.mean(), want, rest[:3])
def text_greys(region):
    # anti-aliased text: many grey levels, not one flat colour
    return len(np.unique(region.reshape(-1, 3), axis=0))
EOF
check_py "one image: colours, contours, text" - <<'EOF'
import sys; sys.path.insert(0, ".")
from pixels import *
img = load("one.png")
assert img.shape == (HEADER + 120, 2 * 164 - 4, 3), img.shape  # image | truth
c = cell(img, 0, 1, 160, 120)
ids, segs = segments("w/val.json", "w/val", 3)
checked = 0
for s, cat in segs:
    m, inner = interior(ids, s["id"])
    if cat["isthing"] or inner.sum() < 200:
        continue
    want = blend([150, 150, 150], cat["color"], 0.85)
    assert_fill(c[inner], want, cat["name"])
    edge = m & ~inner
    assert (c[edge] == 255).all(axis=1).mean() > 0.5, (cat["name"], "contour not white")
    checked += 1
assert checked >= 1, "no large stuff segment"
assert text_greys(img[:HEADER, :]) > 4, "no text in the header"
# class names: dark label boxes with light anti-aliased text inside the cell
dark = (c <= 40).all(axis=2).sum()
assert dark > 50, ("no label boxes", dark)
print("ok")
EOF

# ---- a photo under the result: the image column is the photo, results blend over it
mkdir -p photos
$PY - <<'EOF'
import json, numpy as np
from PIL import Image
gt = json.load(open("w/val.json"))
rng = np.random.default_rng(1)
for im in gt["images"]:
    a = np.zeros((im["height"], im["width"], 3), np.uint8)
    a[..., 0] = np.arange(im["width"])[None, :] * 255 // im["width"]
    a[..., 1] = 90
    a[..., 2] = rng.integers(0, 256)
    Image.fromarray(a).save("photos/" + im["file_name"], format="PNG")  # read by content: exact pixels
EOF
"$AVPS" show --gt-json w/val.json --column truth=w/val.json --images 3 --no-gt --photos photos --out photo.png ||
    ko "show --photos"
check_py "photo: image column and blend over it" - <<'EOF'
import sys; sys.path.insert(0, ".")
from pixels import *
img = load("photo.png")
photo = np.asarray(Image.open("photos/000000000003.jpg").convert("RGB")).astype(int)
c0, c1 = cell(img, 0, 0, 160, 120), cell(img, 0, 1, 160, 120)
below = c0[40:, :]  # under the caption
assert (np.abs(below - photo[40:, :]) == 0).mean() > 0.99, "image column is not the photo"
ids, segs = segments("w/val.json", "w/val", 3)
for s, cat in segs:
    m, inner = interior(ids, s["id"])
    if cat["isthing"] or inner.sum() < 200:
        continue
    want = blend(photo[inner], cat["color"], 0.55)
    assert_fill(c1[inner], want, cat["name"])
    break
print("ok")
EOF

# ---- Figure 4: the layout, and --top against eval pq on each image alone
"$AVPS" show --gt-json w/val.json "${COLS[@]}" --top 2 --out fig.png --progress none || ko "show --top 2"
check_py "figure 4 layout" - <<'EOF'
import sys; sys.path.insert(0, ".")
from pixels import *
img = load("fig.png")
w, h = 160, 120
assert img.shape == (HEADER + 2 * (h + GAP) - GAP, 5 * (w + GAP) - GAP, 3), img.shape
for col in range(5):  # a title over every column
    assert text_greys(img[:HEADER, col * (w + GAP):col * (w + GAP) + w]) > 4, ("no title over column", col)
for row in range(2):  # the gaps between cells are the white background
    for col in range(4):
        x = col * (w + GAP) + w
        assert (cell(img, row, 0, 5 * (w + GAP), h)[:, x:x + GAP] == 255).all(), (row, col)
print("ok")
EOF
$PY - "$AVPS" >top.txt <<'EOF' || ko "per-image PQ"
import json, subprocess, sys
gt = json.load(open("w/val.json"))
cols = ["r/ends/e_ups.json", "r/ends/lwl_htc.json", "r/panoptic.json"]
gains = []
for k, im in enumerate(gt["images"]):
    one = dict(gt, images=[im], annotations=[a for a in gt["annotations"] if a["image_id"] == im["id"]])
    json.dump(one, open("g1.json", "w"))
    pq = []
    for c in cols:
        p = json.load(open(c))
        p["annotations"] = [a for a in p["annotations"] if a["image_id"] == im["id"]]
        json.dump(p, open("p1.json", "w"))
        subprocess.run([sys.argv[1], "eval", "pq", "--gt-json", "g1.json", "--gt-dir", "w/val", "--pred-json",
                        "p1.json", "--pred-dir", c[:-5], "--json", "q.json"], check=True, stdout=subprocess.DEVNULL)
        pq.append(json.load(open("q.json"))["All"]["pq"])
    gains.append((-(pq[2] - max(pq[0], pq[1])), k, im["id"]))
gains.sort()
print(",".join(str(g[2]) for g in gains[:2]))
EOF
"$AVPS" show --gt-json w/val.json "${COLS[@]}" --images "$(cat top.txt)" --out listed.png || ko "show --images $(cat top.txt)"
cmp -s fig.png listed.png && ok || ko "--top 2 did not draw the images eval pq ranks first ($(cat top.txt))"
$MPIRUN 2 "$AVPS" show --gt-json w/val.json "${COLS[@]}" --top 2 --out fig2.png --threads 1 || ko "mpirun -np 2 show"
cmp -s fig.png fig2.png && ok || ko "mpirun -np 2: another picture"

# ---- semantic and instance columns
"$AVPS" export --gt-json w/val.json --head r50 --backend sim --profile r50 --results r50.json --semantic-dir r50.sem \
    >/dev/null || ko "export"
img=$($PY -c "
import json; r = json.load(open('r50.json')); print(max(set(x['image_id'] for x in r if x['score'] >= 0.5)))")
"$AVPS" show --gt-json w/val.json --column sem=sem:r50.sem --column inst=inst:r50.json --images "$img" --no-gt \
    --out si.png || ko "show sem: inst:"
check_py "semantic and instance columns" - "$img" <<'EOF'
import sys, json; sys.path.insert(0, ".")
from pixels import *
image = int(sys.argv[1])
img = load("si.png")
assert img.shape == (HEADER + 120, 3 * 164 - 4, 3), img.shape
sem = np.asarray(Image.open("r50.sem/%012d.png" % image).convert("L")).astype(int)
cats = {c["id"]: c for c in json.load(open("w/val.json"))["categories"]}
c1 = cell(img, 0, 1, 160, 120)
n = 0
for cid in np.unique(sem):
    m, inner = interior(sem, cid)
    if cid == 0 or inner.sum() < 100:
        continue
    want = blend([150, 150, 150], cats[int(cid)]["color"], 0.85)
    assert_fill(c1[inner], want, cats[int(cid)]["name"])
    n += 1
assert n >= 1, "no large semantic region"
c2 = cell(img, 0, 2, 160, 120)
res = [r for r in json.load(open("r50.json")) if r["image_id"] == image and r["score"] >= 0.5]
inside = np.zeros((120, 160), bool)
for r in res:
    x, y, w, h = r["bbox"]
    inside[max(0, int(y) - 1):int(y + h) + 2, max(0, int(x) - 1):int(x + w) + 2] = True
neutral = (c2 == 150).all(axis=2)
assert neutral[~inside].mean() > 0.9, ("outside the masks is not the background", neutral[~inside].mean())
assert (~neutral[inside]).mean() > 0.3, "the masks are not drawn"
print("ok")
EOF

# ---- bad input: named, non-zero, no picture
bad() { # WHAT PATTERN ARGS...
    local what=$1 pat=$2; shift 2
    if "$AVPS" show "$@" --out bad.png 2>err; then ko "$what: exit 0"
    elif [ -e bad.png ] || ls bad.png.* >/dev/null 2>&1; then ko "$what: a picture was left"
    elif grep -qF -- "$pat" err; then ok; else ko "$what: message '$(cat err)' lacks '$pat'"; fi
}
bad "unknown image" "image 999: not in the ground truth" --gt-json w/val.json --column a=r/panoptic.json --images 999
bad "--top with one column" "--top needs two panoptic columns" --gt-json w/val.json --column a=r/panoptic.json --top 1
bad "column without NAME=" "is not NAME=SPEC" --gt-json w/val.json --column r/panoptic.json
bad "photo missing" "nowhere/000000000001.jpg" --gt-json w/val.json --column a=r/panoptic.json --photos nowhere --images 1
mkdir -p small; $PY -c "
from PIL import Image; Image.new('RGB', (10, 10)).save('small/000000000001.jpg')"
bad "photo of another size" "the photo is 10x10, the ground truth says 160x120" --gt-json w/val.json \
    --column a=r/panoptic.json --photos small --images 1
AVPS_FONT=/nonexistent.ttf bad "no font" "/nonexistent.ttf: cannot open this font" --gt-json w/val.json \
    --column a=r/panoptic.json --images 1

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
