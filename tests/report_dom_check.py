"""report_dom_check.py: checks report.html (or the DOM a browser made of it) against the
JSON the same command wrote: every row of the paper's tables and of the per-class
tables, with its category name and numbers in percent as table3.md prints them, and the
class table's choices. Prints one line per mismatch; exit 1 when there is any.

Usage: report_dom_check.py HTML OUT_DIR GT_JSON run|tables [SCREENSHOT.png]
The screenshot, when given, must not be blank: many colours and not nearly all white."""
import html.parser
import json
import os
import sys


class Tables(html.parser.HTMLParser):
    """The text of every cell of every table body, by table id; the whole text; img srcs."""

    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.text, self.tags = {}, [], [], []
        self.table = self.row = self.cell = None
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self.table = self.tables.setdefault(a.get("id", ""), [])
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "img":
            self.imgs.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.table.append(self.row)
            self.row = None
        elif tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def pct(v):
    return "%.1f" % (100 * v)


def summary_cells(rep):
    return [pct(rep[g][k]) for g in ("All", "Things", "Stuff") for k in ("pq", "sq", "rq")]


def as_written(name):
    """A name as the page holds it (viz_put_escaped): the C0 controls XML cannot hold dropped."""
    return "".join(ch for ch in name if ch >= " " or ch in "\t\n\r")


def per_class_rows(rep, cats):
    rows = []
    for cat in cats:
        c = rep["per_class"].get(str(cat["id"]))
        if c is None or c["tp"] + c["fp"] + c["fn"] == 0:
            continue
        rows.append([as_written(cat["name"]), str(cat["id"]), "thing" if cat["isthing"] == 1 else "stuff",
                     pct(c["pq"]), pct(c["sq"]), pct(c["rq"]), str(c["tp"]), str(c["fp"]), str(c["fn"])])
    return rows


def main():
    page, out, gt_json, kind = sys.argv[1:5]
    shot = sys.argv[5] if len(sys.argv) > 5 else None
    problems = []
    p = Tables()
    p.feed(open(page, encoding="utf-8").read())
    text = "".join(p.text)
    cats = json.load(open(gt_json))["categories"]

    def expect(table, rows):
        got = p.tables.get(table)
        if got is None:
            problems.append("no table %s" % table)
        elif got != rows:
            for k, row in enumerate(rows):
                if row not in got:
                    problems.append("%s: row %d %s missing (got %s)" % (table, k, row, got[k] if k < len(got) else None))
                    break
            else:
                problems.append("%s: %d rows, want %d" % (table, len(got), len(rows)))

    if kind == "run":
        rep = json.load(open(os.path.join(out, "report.json")))
        ends = rep["ends"]
        names = {"e_ups": "E-UPS", "lwl_htc": "LWL-HTC", "fusion": "Fusion (ours)"}
        expect("table3", [[names[e]] + summary_cells(ends[e]) + [pct(rep["ss_miou"][e])] for e in ends])
        per_class = [ends[e] for e in ends]
    else:
        rep = json.load(open(os.path.join(out, "tables.json")))
        rows, lwl = rep["rows"], rep["lwl_htc"]
        others = [n for n in rows if n not in ("e_ups", "fusion", lwl)]
        expect("table3", [["E-UPS"] + summary_cells(rows["e_ups"]), [lwl] + summary_cells(rows[lwl]),
                          ["Fusion"] + summary_cells(rows["fusion"])])
        expect("table1", [[n] + summary_cells(rows[n]) for n in others] + [["E-UPS"] + summary_cells(rows["e_ups"])])
        expect("table2", [[lwl] + summary_cells(rows[lwl])])
        per_class = [rows["e_ups"], rows[lwl], rows["fusion"]]
    for k, r in enumerate(per_class):
        want = per_class_rows(r, cats)
        if not want:
            problems.append("per-class-%d: nothing to check" % k)
        expect("per-class-%d" % k, want)

    ct = json.load(open(os.path.join(out, "class_table.json")))
    names = {c["id"]: as_written(c["name"]) for c in cats}
    got = p.tables.get("class-table", [])
    if len(got) != len(ct["classes"]):
        problems.append("class-table: %d rows, want %d" % (len(got), len(ct["classes"])))
    for row, c in zip(got, ct["classes"]):
        chosen = c["end"] + (" (fallback)" if c["fallback"] else "")
        if row[0] != names[c["category_id"]] or row[1] != str(c["category_id"]) or row[-2] != chosen:
            problems.append("class-table: row %s, want %s ... %s" % (row, names[c["category_id"]], chosen))
            break
    if "Simulation:" not in text:
        problems.append("no simulation banner")
    for src in p.imgs:
        if not os.path.isfile(os.path.join(out, src)):
            problems.append("img %s: no such file beside the page" % src)
    if "script" in p.tags:
        problems.append("the page has a script")

    if shot:
        from PIL import Image
        im = Image.open(shot).convert("RGB")
        colors = im.getcolors(maxcolors=1 << 20) or []
        white = sum(n for n, c in colors if c == (255, 255, 255))
        w, h = im.size
        if len(colors) < 16 or white > 0.98 * w * h:
            problems.append("screenshot %s looks blank: %d colours, %.1f%% white" % (shot, len(colors), 100.0 * white / (w * h)))
    for line in problems:
        print(line)
    sys.exit(1 if problems else 0)


main()
