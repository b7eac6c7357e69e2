"""A corpus of broken image files, built in a folder: every format Pillow writes here, truncated, bit-flipped and
spliced, plus empty files, headers that claim billions of pixels, and paths that are not files.

Shared by the tests of everything that reads images from outside (bulk prediction, the service)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, features

# (format, suffix, mode) for each format this Pillow can write; modes chosen so each format accepts them.
FORMATS = [("JPEG", ".jpg", "RGB"), ("PNG", ".png", "RGBA"), ("GIF", ".gif", "P"), ("BMP", ".bmp", "RGB"),
           ("TIFF", ".tif", "RGB"), ("PPM", ".ppm", "RGB"), ("TGA", ".tga", "RGB"), ("PCX", ".pcx", "RGB"),
           ("ICO", ".ico", "RGBA"), ("IM", ".im", "RGB"), ("SGI", ".sgi", "RGB"), ("DDS", ".dds", "RGBA"),
           ("QOI", ".qoi", "RGBA")]
if features.check("webp"):
    FORMATS.append(("WEBP", ".webp", "RGB"))
if features.check("jpg_2000"):
    FORMATS.append(("JPEG2000", ".jp2", "RGB"))


def valid_image(fmt: str, mode: str, seed: int = 0, size: tuple[int, int] = (40, 32)) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    out = io.BytesIO()
    if fmt == "GIF":  # two frames: the animated path too
        image.save(out, fmt, save_all=True, append_images=[image.rotate(90)])
    else:
        image.save(out, fmt)
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR (right CRC) claiming width x height, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _gif_claiming(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b",\x00\x00\x00\x00" + struct.pack(
        "<HH", width, height) + b"\x00\x02\x02D\x01\x00;"


def build_corpus(folder: Path, flips: int = 6) -> list[Path]:
    """Write the corpus into `folder`; returns every path (some are not regular files)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {"empty.png": b"", "text.png": b"just some text, not an image\n",
                               "zeros.jpg": bytes(4096), "huge.png": _png_claiming(100_000, 100_000),
                               "wide.png": _png_claiming(2**31 - 1, 1), "huge.gif": _gif_claiming(65535, 65535)}
    originals = {fmt: valid_image(fmt, mode) for fmt, _, mode in FORMATS}
    rng = np.random.default_rng(0)
    for fmt, suffix, _ in FORMATS:
        data = originals[fmt]
        for cut in sorted({1, 8, 16, 32, 64, len(data) // 4, len(data) // 2, len(data) - 10, len(data) - 1}):
            if 0 < cut < len(data):
                files[f"{fmt}-cut{cut}{suffix}"] = data[:cut]
        for n in range(flips):
            flipped = bytearray(data)
            for position in rng.integers(0, len(data), size=1 + n):
                flipped[position] ^= 1 << int(rng.integers(0, 8))
            files[f"{fmt}-flip{n}{suffix}"] = bytes(flipped)
        other = originals[FORMATS[(FORMATS.index(next(f for f in FORMATS if f[0] == fmt)) + 1) % len(FORMATS)][0]]
        files[f"{fmt}-spliced{suffix}"] = data[: len(data) // 2] + other[len(other) // 2:]
        files[f"{fmt}-header-only{suffix}"] = data[:64] + bytes(256)
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    (folder / "a-folder.png").mkdir(exist_ok=True)
    fifo = folder / "fifo.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    return [*paths, folder / "a-folder.png", fifo, Path("/dev/zero"), folder / "missing.png"]
