"""Open any meme image by content, never by extension, and hand back plain RGB."""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from memecat.errors import DataError

# Pixels decoded at most: far beyond any meme (the shared datasets' largest is 4.2 MP), and a bounded amount of
# memory (40 MP of RGBA is 160 MB) whatever a file claims. A larger JPEG is decoded at a reduced scale first.
MAX_PIXELS = 40_000_000
# A JPEG over this many pixels is decoded at 1/2, 1/4 or 1/8 scale (Pillow's draft mode) to about this size: the
# encoders read 224-384 px, so nothing they see changes, and memes below it decode exactly as always.
JPEG_DRAFT_PIXELS = 16_000_000


class ImageTooLarge(DataError):
    """An image over the pixel cap, refused from its header before any decoding."""


def to_rgb(image: Image.Image) -> Image.Image:
    if getattr(image, "is_animated", False):
        image.seek(0)  # first frame of GIF/APNG/WebP animations
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping to white.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr / top * 255).astype("uint8")).convert("RGB")
    return image.convert("RGB")


def check_file(path: Path, label: str, max_bytes: int | None = None) -> None:
    """Refuse, before any read, what is not a regular, non-empty image file (at most `max_bytes`): a device such
    as /dev/zero or a FIFO would never end a read, and a huge file would fill memory."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(label, "image file not found") from None
    except OSError as exc:
        raise DataError(label, f"cannot read image ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(label, "image path is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(label, "image path is not a regular file (a device, FIFO or socket)")
    if info.st_size == 0:
        raise DataError(label, "image file is empty")
    if max_bytes is not None and info.st_size > max_bytes:
        raise DataError(label, f"image file is {info.st_size:,} bytes, over the {max_bytes:,}-byte cap")


def _read(source: str | Path | bytes, label: str) -> bytes:
    if isinstance(source, bytes):
        if not source:
            raise DataError(label, "image is empty")
        return source
    check_file(Path(source), label)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise DataError(label, f"cannot read image ({exc.strerror or exc})") from None


def _draft(image: Image.Image) -> tuple[int, int]:
    """Set a huge JPEG to decode at a reduced scale; the size the image will decode to."""
    width, height = image.size
    if image.format in ("JPEG", "MPO") and width * height > JPEG_DRAFT_PIXELS:
        # draft keeps at least the size asked for, so asking half the target per side lands between a quarter
        # of JPEG_DRAFT_PIXELS and all of it.
        scale = 2 * math.sqrt(width * height / JPEG_DRAFT_PIXELS)
        image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
    return image.size


def check_pixels(width: int, height: int, label: str) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(label, f"image is {width}x{height}, over the {MAX_PIXELS:,}-pixel cap")


class UnreadableImage(DataError):
    """Bytes in which no decoder recognises an image format."""


@contextmanager
def _decoder_errors(label: str) -> Iterator[None]:
    """Every failure of the decoder, of any type, as a DataError: image files come from outside and may be anything."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLarge(label, f"image is over the {MAX_PIXELS:,}-pixel cap") from None
    except UnidentifiedImageError:
        raise UnreadableImage(label, "not a readable image (unknown or corrupt format)") from None
    except MemoryError:
        raise ImageTooLarge(label, "image too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise IndexError, struct.error, EOFError, ...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(label, f"corrupt image ({detail})") from None


def read_header(data: bytes, label: str) -> tuple[str, tuple[int, int]]:
    """An image's format and the size it decodes to (a huge JPEG's reduced scale included), from its header alone:
    no pixel is decoded, and the pixel cap is left to the caller (`check_pixels`)."""
    with _decoder_errors(label), Image.open(io.BytesIO(data)) as image:
        return image.format, _draft(image)


def open_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Decode a file path or raw bytes into an RGB image, or raise DataError naming the file."""
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    data = _read(source, label)
    with _decoder_errors(label):
        image = Image.open(io.BytesIO(data))
        check_pixels(*_draft(image), label)  # from the header, before any pixel is decoded
        image.load()
        return to_rgb(image)
