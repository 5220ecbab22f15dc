"""png_encode.py: a small PNG encoder (zlib + struct) for the tests, writing what Pillow
cannot: every colour type and bit depth, tRNS, Adam7 interlacing and every row filter.
Used by tests/test_png_modes.sh and tests/fuzz/make-seeds.py."""
import struct
import zlib

import numpy as np

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(row, depth):
    """row: 1-D array of samples -> bytes at depth bits each, MSB first."""
    if depth == 16:
        return row.astype(">u2").tobytes()
    if depth == 8:
        return row.astype(np.uint8).tobytes()
    per = 8 // depth
    out = bytearray((len(row) + per - 1) // per)
    for i, v in enumerate(row):
        out[i // per] |= (int(v) & ((1 << depth) - 1)) << (8 - depth * (i % per + 1))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(raw, prev, bpp, ftype):
    out = bytearray(raw)
    for i in range(len(raw)):
        a = raw[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
        out[i] = (raw[i] - pred) & 0xFF
    return bytes([ftype]) + bytes(out)


def image_data(samples, depth, color_type, filters):
    """samples: h x w x channels; filters: a filter type, or None to cycle 0..4 by row."""
    h, w, ch = samples.shape
    bpp = max(1, ch * depth // 8)
    out, prev = bytearray(), None
    for y in range(h):
        raw = pack_row(samples[y].reshape(-1), depth)
        ftype = (y % 5) if filters is None else filters
        out += filter_row(raw, prev, bpp, ftype)
        prev = raw
    return bytes(out)


def encode(samples, color_type, depth, palette=None, trns=None, interlace=False, filters=0, level=6):
    """samples: h x w x channels array (palette: indexes). palette: list of (r, g, b);
    trns: bytes of the tRNS chunk as given (palette alphas, or the key colour)."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, ch = samples.shape
    assert ch == CHANNELS[color_type]
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += image_data(sub, depth, color_type, filters)
    else:
        data = image_data(samples, depth, color_type, filters)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        png += chunk(b"PLTE", bytes(v for rgb in palette for v in rgb))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(data, level))
    png += chunk(b"IEND", b"")
    return png
