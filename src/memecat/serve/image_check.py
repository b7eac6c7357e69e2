"""An uploaded image judged by its header alone, before any pixel is decoded: its type by its bytes, its
pixel count against the decoder's cap."""

from __future__ import annotations

from memecat.data.images import ImageTooLarge, UnreadableImage, check_pixels, read_header
from memecat.errors import DataError
from memecat.serve.scoring import ItemError
from memecat.serve.settings import ServeSettings

# Pillow's format names for the accepted types; MPO is what Pillow calls many camera JPEGs.
ALLOWED_TYPES = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP"}
ACCEPTED = "JPEG, PNG, GIF, WebP or BMP"
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
        kind, (width, height) = read_header(data, name)
    except UnreadableImage:
        if _has_accepted_signature(data):  # a damaged file of an accepted type, not some other kind of file
            return ItemError(422, f"{name}: corrupt image (its header cannot be read)")
        return ItemError(415, f"{name}: not an image; send {ACCEPTED}")
    except ImageTooLarge as exc:
        return ItemError(413, f"{name}: {exc.problem}")
    except DataError as exc:
        return ItemError(422, f"{name}: {exc.problem}")
    if kind not in ALLOWED_TYPES:
        return ItemError(415, f"{name}: a {kind} image; send {ACCEPTED}")
    try:
        check_pixels(width, height, name)
    except ImageTooLarge as exc:
        return ItemError(413, f"{name}: {exc.problem}")
    return width * height  # after a huge JPEG's reduced scale: what the decoder will allocate
