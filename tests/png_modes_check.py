"""png_modes_check.py DIR TOOL: every PNG layout libpng can hand back, read by avps's
panoptic PNG reader on both of its paths (build/tests/png_tool) and by Pillow, converted
to RGB as panopticapi sees it (alpha ignored). Colour types grey, grey+alpha, RGB, RGBA and
palette at every bit depth the format allows, tRNS present and absent (where allowed),
Adam7 and not, odd sizes, every row filter; written by tests/png_encode.py and, for the
modes it can write, by Pillow itself. Two are refused by avps, and the check is that both
paths refuse them naming the file: 16-bit grey (Pillow clips it to 255, panopticapi cannot
read grey at all) and palette indexes past the PLTE's end (an error in a PNG; libpng reads
them black, Pillow grey).
Prints one FAIL line a mismatch and "N passed, N failed"."""
import io
import os
import subprocess
import sys
import warnings

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import png_encode  # noqa: E402

DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
NAMES = {0: "grey", 2: "rgb", 3: "palette", 4: "greyalpha", 6: "rgba"}
SIZES = ((1, 1), (7, 5), (17, 3))  # (w, h)


def trns_for(ct, depth, samples, palette):
    if ct == 0:  # a key grey that occurs
        return int(samples[0, 0, 0]).to_bytes(2, "big")
    if ct == 2:  # a key colour that occurs
        return b"".join(int(v).to_bytes(2, "big") for v in samples[0, 0])
    if ct == 3:  # alphas for part of the palette
        return bytes((i * 37) % 256 for i in range(min(len(palette), 5)))
    return None


def encoder_files(rng):
    for ct, depths in DEPTHS.items():
        for depth in depths:
            for w, h in SIZES:
                ch = png_encode.CHANNELS[ct]
                samples = rng.integers(0, 1 << depth, size=(h, w, ch))
                palette = None
                if ct == 3:
                    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(1 << depth)]
                for with_trns in (False, True):
                    trns = trns_for(ct, depth, samples, palette) if with_trns else None
                    if with_trns and trns is None:
                        continue  # tRNS is not allowed with an alpha channel
                    for il in (False, True):
                        name = "%s%d_%dx%d%s%s.png" % (NAMES[ct], depth, w, h, "_trns" if with_trns else "",
                                                      "_adam7" if il else "")
                        yield name, png_encode.encode(samples, ct, depth, palette=palette, trns=trns,
                                                      interlace=il, filters=None)
    # flat regions, as in panoptic PNGs: the unfilters' shortcuts for equal neighbours, with
    # colours that differ in one channel only, every filter on all rows and cycled by row
    colours = np.array([[10, 200, 30, 255], [10, 200, 31, 255], [250, 0, 30, 128], [10, 7, 30, 255]])
    ys, xs = np.mgrid[0:11, 0:37]
    blocks = colours[(xs // 3 + ys // 2 + (xs * ys) // 29) % 4]
    for ct in (2, 6):
        for filters in (None, 0, 1, 2, 3, 4):
            name = "%s8_blocks_filter%s.png" % (NAMES[ct], "cycled" if filters is None else filters)
            yield name, png_encode.encode(blocks[:, :, :png_encode.CHANNELS[ct]], ct, 8, filters=filters)
    # wider flat regions, for the unfilters' 4-pixel steps over zeros: vertical stripes
    # (Paeth copies the row above), wide blocks (Sub and Paeth repeat the left pixel),
    # diagonal edges, and rows ending inside a step
    ys, xs = np.mgrid[0:23, 0:101]
    index = np.where(ys < 6, (xs // 2) % 4, np.where(ys < 12, (xs // 17 + ys // 4) % 4, ((xs + ys) // 9) % 4))
    for ct in (2, 6):
        for filters in (None, 1, 4):
            name = "%s8_wide_blocks_filter%s.png" % (NAMES[ct], "cycled" if filters is None else filters)
            yield name, png_encode.encode(colours[index][:, :, :png_encode.CHANNELS[ct]], ct, 8, filters=filters)
    # palette indexes past the PLTE's end
    samples = np.array([[[0], [1], [2], [3]], [[1], [0], [1], [0]]])
    for il in (False, True):
        yield "palette2_short_plte%s.png" % ("_adam7" if il else ""), png_encode.encode(
            samples, 3, 2, palette=[(10, 20, 30), (40, 50, 60)], interlace=il)


def pillow_files(rng):
    rgb = rng.integers(0, 256, size=(5, 7, 3)).astype(np.uint8)
    rgba = rng.integers(0, 256, size=(5, 7, 4)).astype(np.uint8)
    grey = rng.integers(0, 256, size=(5, 7)).astype(np.uint8)
    ims = {
        "pil_rgb": Image.fromarray(rgb, "RGB"),
        "pil_rgba": Image.fromarray(rgba, "RGBA"),
        "pil_l": Image.fromarray(grey, "L"),
        "pil_la": Image.fromarray(np.dstack([grey, grey[::-1]]), "LA"),
        "pil_1": Image.fromarray(grey > 127).convert("1"),
        "pil_p": Image.fromarray(rgb, "RGB").quantize(16),
    }
    for name, im in ims.items():
        for opts in ({}, {"optimize": True}):
            yield name, opts, im
    p = ims["pil_p"]
    yield "pil_p_transparency", {"transparency": 3}, p
    yield "pil_p_alpha_list", {"transparency": bytes(range(0, 256, 16))}, p
    yield "pil_p_bits4", {"bits": 4}, p
    yield "pil_l_transparency", {"transparency": int(grey[0, 0])}, ims["pil_l"]
    yield "pil_rgb_transparency", {"transparency": tuple(int(v) for v in rgb[0, 0])}, ims["pil_rgb"]
    yield "pil_rgba_from_p", {}, p.convert("RGBA")


def refusal(path):
    """The words of avps's refusal of this file, or None where it reads it."""
    with Image.open(path) as im:
        if im.mode.startswith("I"):
            return "16-bit grey"
    return "past the palette" if "short_plte" in path else None


def pillow_rgb(path):
    """What panopticapi reads: Pillow's decoding as RGB (alpha dropped)."""
    with Image.open(path) as im:
        im.load()
        return np.asarray(im.convert("RGB"))


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    head, _, body = data.partition(b"\n")
    _, w, h, _ = head.split()
    return np.frombuffer(body, np.uint8).reshape(int(h), int(w), 3)


def main():
    out_dir, tool = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(12)
    paths = []
    for name, data in encoder_files(rng):
        paths.append(os.path.join(out_dir, name))
        with open(paths[-1], "wb") as f:
            f.write(data)
    for i, (name, opts, im) in enumerate(pillow_files(rng)):
        paths.append(os.path.join(out_dir, "%s_%d.png" % (name, i)))
        im.save(paths[-1], **opts)
    subprocess.run([tool] + paths, check=True)
    passed = failed = 0
    warnings.simplefilter("ignore")  # Pillow on palette transparency
    for p in paths:
        words = refusal(p)
        want = pillow_rgb(p) if words is None else None
        for path_name in ("fast", "libpng"):
            got_file, err_file = "%s.%s.rgb" % (p, path_name), "%s.%s.err" % (p, path_name)
            base = os.path.basename(p)
            if want is None:
                ok = os.path.exists(err_file) and not os.path.exists(got_file)
                msg = open(err_file).read().strip() if ok else ""
                ok = ok and p in msg and words in msg
                why = "not refused by name (%s)" % (msg or "read")
            elif os.path.exists(err_file):
                ok, why = False, "refused: " + open(err_file).read().strip()
            else:
                got = read_ppm(got_file)
                ok = got.shape == want.shape and np.array_equal(got, want)
                if not ok and got.shape == want.shape:
                    y, x = np.argwhere(np.any(got != want, axis=2))[0]
                    why = "pixel (%d, %d): %s, Pillow %s" % (x, y, got[y, x].tolist(), want[y, x].tolist())
                elif not ok:
                    why = "shape %s, Pillow %s" % (got.shape, want.shape)
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL: %s (%s path): %s" % (base, path_name, why))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
