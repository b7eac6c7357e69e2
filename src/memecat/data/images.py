"""Open any meme image by content, never by extension, and hand back plain RGB."""

from __future__ import annotations

import io
import math
import warnings
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


def _read(source: str | Path | bytes, label: str) -> bytes:
    if isinstance(source, bytes):
        if not source:
            raise DataError(label, "image is empty")
        return source
    path = Path(source)
    if not path.exists():
        raise DataError(label, "image file not found")
    if path.is_dir():
        raise DataError(label, "image path is a folder, not a file")
    if not path.is_file():
        raise DataError(label, "image path is not a regular file (a device, FIFO or socket)")
    if path.stat().st_size == 0:
        raise DataError(label, "image file is empty")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(label, f"cannot read image ({exc.strerror or exc})") from None


def _checked_header(image: Image.Image, label: str) -> None:
    """Shrink a huge JPEG's decode (draft) and refuse any image still over the cap, before decoding pixels."""
    width, height = image.size
    if image.format in ("JPEG", "MPO") and width * height > JPEG_DRAFT_PIXELS:
        # draft keeps at least the size asked for, so asking half the target per side lands between a quarter
        # of JPEG_DRAFT_PIXELS and all of it.
        scale = 2 * math.sqrt(width * height / JPEG_DRAFT_PIXELS)
        image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
        width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(label, f"image is {width}x{height}, over the {MAX_PIXELS:,}-pixel cap")


def open_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Decode a file path or raw bytes into an RGB image, or raise DataError naming the file. Every failure
    of the decoder, of any type, is a DataError: image files come from outside and may be anything."""
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    data = _read(source, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _checked_header(image, label)
            image.load()
            return to_rgb(image)
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLarge(label, f"image is over the {MAX_PIXELS:,}-pixel cap") from None
    except UnidentifiedImageError:
        raise DataError(label, "not a readable image (unknown or corrupt format)") from None
    except MemoryError:
        raise ImageTooLarge(label, "image too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise IndexError, struct.error, EOFError, ...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(label, f"corrupt image ({detail})") from None


def sniff_image_type(data: bytes) -> str | None:
    """The image format ('JPEG', 'PNG', ...) found in the bytes, or None if they are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
