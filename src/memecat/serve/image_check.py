"""An uploaded image judged by its header alone, before any pixel is decoded: its type by its bytes, its
pixel count against the decoder's cap."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from memecat.data.images import JPEG_DRAFT_PIXELS, MAX_PIXELS
from memecat.serve.scoring import ItemError
from memecat.serve.settings import ServeSettings

# Pillow's format names for the accepted types; MPO is what Pillow calls many camera JPEGs.
ALLOWED_TYPES = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP"}
ACCEPTED = "JPEG, PNG, GIF, WebP or BMP"
JPEG_DRAFT_SHRINK = 64  # a JPEG decodes at down to 1/8 scale per side: 1/64 of its pixels
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _has_accepted_signature(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def check_image(data: bytes, name: str, settings: ServeSettings) -> ItemError | int:
    """Why this upload cannot be scored, judged without decoding pixels; else how many pixels it decodes to
    (at most), which the scorer budgets per model call."""
    if len(data) > settings.max_upload_bytes:
        return ItemError(413, f"{name}: image over the {settings.max_upload_bytes:,}-byte limit")
    if not data:
        return ItemError(422, f"{name}: image file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
    except UnidentifiedImageError:
        if _has_accepted_signature(data):  # a damaged file of an accepted type, not some other kind of file
            return ItemError(422, f"{name}: corrupt image (its header cannot be read)")
        return ItemError(415, f"{name}: not an image; send {ACCEPTED}")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return ItemError(413, f"{name}: image is over the {MAX_PIXELS:,}-pixel cap")
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise IndexError, struct.error, SyntaxError, ...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ItemError(422, f"{name}: corrupt image ({detail})")
    if kind not in ALLOWED_TYPES:
        return ItemError(415, f"{name}: a {kind} image; send {ACCEPTED}")
    # JPEGs decode at a reduced scale when large (the decoder decides); any other type must fit the cap as is.
    jpeg = kind in ("JPEG", "MPO")
    if width * height > MAX_PIXELS * (JPEG_DRAFT_SHRINK if jpeg else 1):
        return ItemError(413, f"{name}: image is {width}x{height}, over the {MAX_PIXELS:,}-pixel cap")
    return min(width * height, JPEG_DRAFT_PIXELS) if jpeg else width * height
