"""Encoders as PyTorch modules, by registered name, hub repo id or checkpoint folder (imports torch and
transformers; `memecat.encoders` re-exports all of it on first use)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from memecat.encoders.base import (
    GRID_TOKENS,
    ImageEncoder,
    ImageFeatures,
    ImagePreprocessing,
    TextEncoder,
    TextFeatures,
)
from memecat.encoders.hub import (
    Checkpoint,
    EncoderInfo,
    EncoderKind,
    ModelFamily,
    checkpoint_for,
    describe_families,
    encoder_catalog,
    register_encoder,
    registered_factory,
    registered_names,
)
from memecat.encoders.image import IMAGE_FAMILIES, image_encoder_from
from memecat.encoders.text import TEXT_FAMILIES, text_encoder_from
from memecat.errors import MemecatError

# Registered names whose weights are installed or downloadable (Lite1/2 only with their packages).
TEXT_ENCODERS: list[str] = registered_names("text")
IMAGE_ENCODERS: list[str] = registered_names("image")


def supported_families(kind: EncoderKind) -> str:
    """The model families a checkpoint folder or hub repo may hold, with their config.json model types."""
    return describe_families(TEXT_FAMILIES if kind == "text" else IMAGE_FAMILIES)


def _get(
    kind: EncoderKind,
    name: str,
    families: Mapping[str, ModelFamily],
    from_checkpoint: Callable[[Checkpoint], TextEncoder | ImageEncoder],
) -> TextEncoder | ImageEncoder:
    factory = registered_factory(kind, name)
    if factory is not None:
        return factory()
    checkpoint = checkpoint_for(name, kind, families)
    if checkpoint is None:
        raise MemecatError(
            f"unknown {kind} encoder '{name}'; known: {', '.join(registered_names(kind))}; "
            "or give a hub repo id (org/name) or a checkpoint folder"
        )
    return from_checkpoint(checkpoint)


def get_text_encoder(name: str) -> TextEncoder:
    """The text encoder `name` (registered name, hub repo id or checkpoint folder), frozen and in eval mode."""
    return _get("text", name, TEXT_FAMILIES, text_encoder_from)


def get_image_encoder(name: str) -> ImageEncoder:
    """The image encoder `name` (registered name, hub repo id or checkpoint folder), frozen and in eval mode."""
    return _get("image", name, IMAGE_FAMILIES, image_encoder_from)


__all__ = ["GRID_TOKENS", "IMAGE_ENCODERS", "TEXT_ENCODERS", "EncoderInfo", "ImageEncoder", "ImageFeatures",
           "ImagePreprocessing", "TextEncoder", "TextFeatures", "encoder_catalog", "get_image_encoder",
           "get_text_encoder", "register_encoder", "supported_families"]
