"""figures_check.py: reads avps's figures back as a person and a script would see them
(issue 15 item 9). The SVG is parsed with xml.etree and its bars and curves measured
against numbers computed here from the run's JSON (or from pycocotools' precision); the
PNG is opened with Pillow and its bars measured in pixels. Prints one line per failure.

  figures_check.py classtable FIG_DIR class_table.json gt.json
  figures_check.py pq FIG_DIR report.json gt.json END
  figures_check.py pr FIG.svg FIG.png gt.json dt.json   (pycocotools: the build/venv python)
"""
import json
import math
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"
failures = []


def fail(msg):
    failures.append(msg)


def svg_parts(path):
    root = ET.parse(path).getroot()
    plot = [e for e in root.iter(NS + "rect") if e.get("class") == "plot"][0]
    box = {k: float(plot.get(k)) for k in ("x", "y", "width", "height")}
    bars = {}
    for e in root.iter(NS + "rect"):
        if (e.get("class") or "").startswith("bar"):
            bars[(int(e.get("data-series")), int(e.get("data-category")))] = e
    texts = [(e.get("class"), e.text or "") for e in root.iter(NS + "text")]
    return root, box, bars, texts


def hex_rgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


def png_bar_length(img, bar):
    """The run of the bar's colour along the row through its middle, from its left edge
    (that column is the plot's frame; the pick's outline is black)."""
    x, y = int(float(bar.get("x"))), int(float(bar.get("y")) + float(bar.get("height")) / 2)
    ok = {hex_rgb(bar.get("fill"))} | ({(0, 0, 0)} if bar.get("stroke") else set())
    n = 1
    while x + n < img.width and img.getpixel((x + n, y))[:3] in ok:
        n += 1
    return n if n > 1 else 0


def check_png(png, svg_bars, colours):
    from PIL import Image
    img = Image.open(png).convert("RGB")
    if len(set(img.getdata())) < 10:
        fail(f"{png}: blank (fewer than 10 colours)")
    present = set(img.getdata())
    for c in colours:
        if c not in present:
            fail(f"{png}: colour {c} not drawn")
    for key, bar in svg_bars.items():
        want = float(bar.get("width"))
        got = png_bar_length(img, bar)
        if want >= 2 and abs(got - want) > 1.5:
            fail(f"{png}: bar {key} is {got} px long in the PNG, {want:.1f} in the SVG")
    return img


def as_written(name):
    """A name as the figures hold it (viz_put_escaped): the C0 controls XML cannot hold dropped."""
    return "".join(ch for ch in name if ch >= " " or ch in "\t\n\r")


def bar_width_for(box, value_percent):
    return max(0.0, min(1.0, value_percent / 100)) * box["width"]


def classtable(fig, table_json, gt_json):
    t = json.load(open(table_json))
    cats = {c["id"]: as_written(c["name"]) for c in json.load(open(gt_json))["categories"]}
    root, box, bars, texts = svg_parts(f"{fig}/class_table.svg")
    ends = t["ends"]
    names = [x for c, x in texts if c == "category"]
    want_names = [cats[c["category_id"]] for c in t["classes"]]
    if names != want_names:
        fail(f"class_table.svg: category names {names[:4]}... are not {want_names[:4]}...")
    for k, c in enumerate(t["classes"]):
        scores = [c["score"][e] for e in ends]
        for e, s in enumerate(scores):
            bar = bars.get((e, k))
            if s is None:
                if bar is not None:
                    fail(f"class {c['category_id']}: end {ends[e]} has no score but a bar")
                continue
            if bar is None or abs(float(bar.get("width")) - bar_width_for(box, 100 * s)) > 0.02:
                fail(f"class {c['category_id']}: {ends[e]}'s bar is not {100 * s:.2f} %")
            picked = "pick" in bar.get("class")
            if picked != (ends[e] == c["end"]):
                fail(f"class {c['category_id']}: the outlined bar is not the pick {c['end']}")
        defined = [s for s in scores if s is not None]
        chosen = c["score"][c["end"]]
        if defined and chosen is not None:
            regret = 100 * (max(defined) - chosen)
            bar = bars.get((len(ends), k))
            if regret > 0 and (bar is None or abs(float(bar.get("width")) - bar_width_for(box, regret)) > 0.02):
                fail(f"class {c['category_id']}: the regret bar is not {regret:.2f} %")
        note = [x for cl, x in texts if cl == "note"][k]
        if f"pick {c['end']}" not in note:
            fail(f"class {c['category_id']}: note '{note}' does not name the pick {c['end']}")
    fills = {bars[b].get("fill") for b in bars}
    img = check_png(f"{fig}/class_table.png", bars, [hex_rgb(f) for f in fills])
    # the class where one end scores higher has the longer bar, as the pixels show
    for k, c in enumerate(t["classes"]):
        s = [c["score"][e] for e in ends]
        if None not in s and abs(s[0] - s[1]) > 0.05 and min(s) > 0.02:
            lengths = [png_bar_length(img, bars[(e, k)]) for e in range(2)]
            if (lengths[0] > lengths[1]) != (s[0] > s[1]):
                fail(f"class {c['category_id']}: PNG bars {lengths} do not order as scores {s}")


def pq(fig, report_json, gt_json, end):
    r = json.load(open(report_json))["ends"][end]["per_class"]
    cats = json.load(open(gt_json))["categories"]
    root, box, bars, texts = svg_parts(f"{fig}/pq_per_class_{end}.svg")
    names = [x for c, x in texts if c == "category"]
    shown = [c for c in cats if sum(r[str(c["id"])][k] for k in ("tp", "fp", "fn")) > 0]
    if names != [as_written(c["name"]) for c in shown]:
        fail(f"pq_per_class_{end}.svg: categories {names[:3]}... are not {[c['name'] for c in shown][:3]}...")
    for k, c in enumerate(shown):
        s = r[str(c["id"])]
        value = s["iou"] / (s["tp"] + 0.5 * s["fp"] + 0.5 * s["fn"])  # panopticapi's pq, from the counts
        bar = bars.get((0, k))
        if bar is None or abs(float(bar.get("width")) - bar_width_for(box, 100 * value)) > 0.02:
            fail(f"{end}: {c['name']}'s bar is not PQ {100 * value:.2f}")
        elif bar.get("fill") != ("#1f77b4" if c["isthing"] else "#ff7f0e"):
            fail(f"{end}: {c['name']}'s bar is {bar.get('fill')} ({'thing' if c['isthing'] else 'stuff'})")
    check_png(f"{fig}/pq_per_class_{end}.png", bars, [(31, 119, 180), (255, 127, 14)])


def pr(svg, png, gt_json, dt_json):
    import contextlib
    import io
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_json)
        ev = COCOeval(gt, gt.loadRes(dt_json), "segm")
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, 2]  # area all, maxDets 100
    root, box, bars, texts = svg_parts(svg)
    lines = [e for e in root.iter(NS + "polyline")]
    legend = [x for c, x in texts if c == "legend"]
    if legend != [f"IoU={t:.2f}" for t in ev.params.iouThrs]:
        fail(f"{svg}: legend {legend} is not one entry per IoU threshold")
    for t in range(p.shape[0]):
        pts = [tuple(map(float, q.split(","))) for e in lines if e.get("data-series") == str(t)
               for q in e.get("points").split()]
        want = []
        for r, rec in enumerate(ev.params.recThrs):
            v = p[t, r][p[t, r] > -1]
            if v.size:
                want.append((box["x"] + rec * box["width"], box["y"] + (1 - v.mean()) * box["height"]))
        if len(pts) != len(want) or any(abs(a[0] - b[0]) > 0.01 or abs(a[1] - b[1]) > 0.01 for a, b in zip(pts, want)):
            fail(f"{svg}: curve {t} does not follow pycocotools' mean precision")
            break
    from PIL import Image
    img = Image.open(png).convert("RGB")
    present = set(img.getdata())
    colours = {hex_rgb(e.get("stroke")) for e in lines}
    if len(present) < 10 or not colours <= present:
        fail(f"{png}: blank, or curves' colours {colours - present} missing")


if __name__ == "__main__":
    {"classtable": classtable, "pq": pq, "pr": pr}[sys.argv[1]](*sys.argv[2:])
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)
