"""Prints what a PNG shows, as JSON: width, height, the count of pixels that are not white,
and for each COLOR (#rrggbb) the count of pixels within 40 of it on every channel.

    png_stats.py FILE.png [#rrggbb ...]

Standard library only (zlib): 8-bit RGB or RGBA, not interlaced, as rsvg-convert writes.
"""
import json
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"png_stats.py: {path}: not a PNG")
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise SystemExit(f"png_stats.py: {path}: depth {depth}, colour type {color}, interlace {interlace} not handled")
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    return width, height, channels, rows


def main():
    width, height, channels, rows = read_png(sys.argv[1])
    colors = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in sys.argv[2:]]
    counts, not_white = [0] * len(colors), 0
    for row in rows:
        for x in range(0, len(row), channels):
            pixel = tuple(row[x:x + 3])
            if channels == 4 and row[x + 3] < 128:
                continue  # transparent counts as background
            if min(pixel) < 240:
                not_white += 1
            for k, color in enumerate(colors):
                if all(abs(p - q) <= 40 for p, q in zip(pixel, color)):
                    counts[k] += 1
    print(json.dumps({"width": width, "height": height, "not_white": not_white,
                      "colors": dict(zip(sys.argv[2:], counts))}))


if __name__ == "__main__":
    main()
