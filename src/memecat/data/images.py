"""Open any meme image by content, never by extension, and hand back plain RGB."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from memecat.errors import DataError

# Refuse decompression bombs: 64 megapixels is far beyond any meme.
MAX_PIXELS = 64_000_000


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


def open_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Decode a file path or raw bytes into an RGB image, or raise DataError naming the file."""
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise DataError(label, "image file not found")
        if path.is_dir():
            raise DataError(label, "image path is a folder, not a file")
        if path.stat().st_size == 0:
            raise DataError(label, "image file is empty")
        data = path.read_bytes()
    else:
        data = source
        if not data:
            raise DataError(label, "image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(label, f"image is {width}x{height}, over the {MAX_PIXELS:,}-pixel cap")
            image.load()
            return to_rgb(image)
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DataError(label, f"image is over the {MAX_PIXELS:,}-pixel cap") from None
    except UnidentifiedImageError:
        raise DataError(label, "not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(label, f"corrupt image ({exc})") from None


def sniff_image_type(data: bytes) -> str | None:
    """The image format ('JPEG', 'PNG', ...) found in the bytes, or None if they are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
