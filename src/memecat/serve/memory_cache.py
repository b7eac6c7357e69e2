"""Encoder features of recent uploads, in memory and under a byte cap.

A service sees an unbounded stream of distinct memes: storing each one's features on disk, as training does,
grows without end and keeps users' content. This cache has FeatureCache's interface (`get`, `put`, `root`)
and holds at most `max_bytes` of tensors, dropping the least recently used. `root` stays the normal cache
folder because exported ONNX encoders live there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from memecat.encoders.cache import Keyed, default_cache_dir


def tensors_nbytes(tensors: dict[str, Any]) -> int:
    """Bytes held by a dict of numpy arrays (or torch tensors: both have nbytes)."""
    return sum(int(t.nbytes) for t in tensors.values())


class MemoryFeatureCache:
    """Size-capped LRU of feature tensors, keyed like FeatureCache; safe to use from several threads (the
    feature extractor looks entries up from its image-decoding threads)."""

    def __init__(self, max_bytes: int, root: Path | str | None = None):
        self.max_bytes = max_bytes
        self.root = Path(root) if root is not None else default_cache_dir()
        self.nbytes = 0
        self._entries: OrderedDict[tuple[str, str, str], tuple[dict[str, Any], int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(encoder: Keyed, digest: str) -> tuple[str, str, str]:
        return encoder.name, encoder.fingerprint(), digest

    def get(self, encoder: Keyed, digest: str, keys: Collection[str] | None = None) -> dict[str, Any] | None:
        """The stored arrays (only `keys` when given), or None; a hit becomes the most recently used."""
        key = self._key(encoder, digest)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            entry = found[0]
        return dict(entry) if keys is None else {k: entry[k] for k in keys if k in entry}

    def put(self, encoder: Keyed, digest: str, tensors: dict[str, Any]) -> None:
        size = tensors_nbytes(tensors)
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        key = self._key(encoder, digest)
        with self._lock:
            if key in self._entries:
                self.nbytes -= self._entries.pop(key)[1]
            self._entries[key] = (dict(tensors), size)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                self.nbytes -= self._entries.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
