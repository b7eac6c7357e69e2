"""On-disk store of frozen-encoder features, one safetensors file per (encoder, content) pair.

Layout: <root>/<encoder name>/<encoder fingerprint>/<hash[:2]>/<hash>.safetensors. Every file can be
deleted at any time; an unreadable one counts as a miss and is written again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from memecat.encoders.base import Encoder
from memecat.files import atomic_open

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$MEMECAT_CACHE, else ~/.cache/memecat."""
    configured = os.environ.get("MEMECAT_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "memecat"


def content_hash(data: bytes | str) -> str:
    """sha256 of file bytes, or of a text's UTF-8."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


class FeatureCache:
    """Features keyed by encoder name + encoder fingerprint + content hash."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._warned = False

    def path(self, encoder: Encoder, digest: str) -> Path:
        return self.root / encoder.name / encoder.fingerprint() / digest[:2] / f"{digest}.safetensors"

    def get(self, encoder: Encoder, digest: str) -> dict[str, torch.Tensor] | None:
        """The stored tensors, or None when missing or unreadable."""
        path = self.path(encoder, digest)
        try:
            return load_file(path)
        except FileNotFoundError:
            return None
        except (OSError, SafetensorError, ValueError) as exc:
            log.debug("ignoring unreadable cache entry %s: %s", path, exc)
            return None

    def put(self, encoder: Encoder, digest: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store atomically (temp file + rename); a failed write only costs a recompute later."""
        try:
            with atomic_open(self.path(encoder, digest), "wb") as handle:
                handle.write(save({key: value.contiguous() for key, value in tensors.items()}))
        except OSError as exc:
            if not self._warned:
                log.warning(
                    "feature cache %s is not writable (%s); features will be recomputed", self.root, exc
                )
                self._warned = True
