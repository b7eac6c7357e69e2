"""On-disk store of frozen-encoder features, one safetensors file per (encoder, content) pair.

Layout: <root>/<encoder name>/<encoder fingerprint>/<hash[:2]>/<hash>.safetensors. Every file can be
deleted at any time; an unreadable one counts as a miss and is written again. Entries are numpy arrays (the
files are plain safetensors, so PyTorch reads them as well).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from memecat.files import atomic_open

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$MEMECAT_CACHE, else ~/.cache/memecat."""
    configured = os.environ.get("MEMECAT_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "memecat"


def content_hash(data: bytes | str) -> str:
    """sha256 of file bytes, or of a text's UTF-8."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


class Keyed(Protocol):
    """What names an encoder's features: a PyTorch encoder or its frozen runtime form."""

    name: str

    def fingerprint(self) -> str: ...


class FeatureCache:
    """Features keyed by encoder name + encoder fingerprint + content hash."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._warned = False

    def path(self, encoder: Keyed, digest: str) -> Path:
        return self.root / encoder.name / encoder.fingerprint() / digest[:2] / f"{digest}.safetensors"

    def get(self, encoder: Keyed, digest: str, keys: Collection[str] | None = None) -> dict[str, np.ndarray] | None:
        """The stored arrays (only `keys` when given: a pooled vector without its 250 KB grid), or None when
        missing or unreadable."""
        path = self.path(encoder, digest)
        try:
            if keys is None:
                return load_file(path)
            with safe_open(path, framework="np") as stored:
                available = set(stored.keys())
                return {key: stored.get_tensor(key) for key in keys if key in available}
        except FileNotFoundError:
            return None
        except (OSError, SafetensorError, ValueError) as exc:
            log.debug("ignoring unreadable cache entry %s: %s", path, exc)
            return None

    def put(self, encoder: Keyed, digest: str, tensors: dict[str, np.ndarray]) -> None:
        """Store atomically (temp file + rename); a failed write only costs a recompute later."""
        try:
            with atomic_open(self.path(encoder, digest), "wb") as handle:
                handle.write(save({key: np.ascontiguousarray(value) for key, value in tensors.items()}))
        except OSError as exc:
            if not self._warned:
                log.warning(
                    "feature cache %s is not writable (%s); features will be recomputed", self.root, exc
                )
                self._warned = True
