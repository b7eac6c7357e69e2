"""Frozen text and image encoders by name; `minilm-l6` and `efficientnet-lite0` work offline."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from memecat.encoders.base import (
    GRID_TOKENS,
    ImageEncoder,
    ImageFeatures,
    ImagePreprocessing,
    TextEncoder,
    TextFeatures,
)
from memecat.encoders.image import blip_vision, clip_vision, efficientnet_lite, lite_available, resnet_50
from memecat.encoders.text import blip_text, clip_text, minilm_l6, roberta_base
from memecat.errors import MemecatError

_TEXT: dict[str, Callable[[], TextEncoder]] = {
    "minilm-l6": minilm_l6,
    "roberta-base": roberta_base,
    "clip-vit-b32": clip_text,
    "blip-itm-base": blip_text,
}
_IMAGE: dict[str, Callable[[], ImageEncoder]] = {
    "efficientnet-lite0": partial(efficientnet_lite, 0),
    "efficientnet-lite1": partial(efficientnet_lite, 1),
    "efficientnet-lite2": partial(efficientnet_lite, 2),
    "resnet-50": resnet_50,
    "clip-vit-b32": clip_vision,
    "blip-itm-base": blip_vision,
}

# Lite1/2 are listed only when their weight packages are installed; asking for them anyway names the package.
_OPTIONAL = {"efficientnet-lite1": 1, "efficientnet-lite2": 2}

TEXT_ENCODERS: list[str] = list(_TEXT)
IMAGE_ENCODERS: list[str] = [
    name for name in _IMAGE if name not in _OPTIONAL or lite_available(_OPTIONAL[name])
]


def _get(
    kind: str, registry: dict[str, Callable[[], TextEncoder | ImageEncoder]], known: list[str], name: str
) -> TextEncoder | ImageEncoder:
    try:
        factory = registry[name]
    except KeyError:
        raise MemecatError(f"unknown {kind} encoder '{name}'; known: {', '.join(known)}") from None
    return factory()


def get_text_encoder(name: str) -> TextEncoder:
    """The named text encoder, frozen and in eval mode."""
    return _get("text", _TEXT, TEXT_ENCODERS, name)


def get_image_encoder(name: str) -> ImageEncoder:
    """The named image encoder, frozen and in eval mode."""
    return _get("image", _IMAGE, IMAGE_ENCODERS, name)


__all__ = [
    "GRID_TOKENS",
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "ImageEncoder",
    "ImageFeatures",
    "ImagePreprocessing",
    "TextEncoder",
    "TextFeatures",
    "get_image_encoder",
    "get_text_encoder",
]
