"""A model folder's id: a short hash of the files that decide its predictions, so outputs can say which model
wrote them and a resumed job can refuse to mix two models (no torch import)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from memecat.errors import MemecatError

# config.json holds labels, thresholds and the config; the weights file the rest. The model card (README.md)
# is left out: editing its prose changes no prediction.
MODEL_FILES = ("config.json", "model.safetensors")
ID_LENGTH = 12  # hex digits: 48 bits, far from a collision among one team's models


def model_id(folder: str | Path) -> str:
    """The id of the model in `folder`: the first 12 hex digits of a SHA-256 over its config and weights.
    Computed once per folder state (files re-hashed only when their size or modification time changes)."""
    folder = Path(folder).resolve()
    stamps = []
    for name in MODEL_FILES:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            stamps.append((name, stat.st_size, stat.st_mtime_ns))
    if not any(name == MODEL_FILES[0] for name, *_ in stamps):
        raise MemecatError(f"{folder}: not a memecat model folder (no {MODEL_FILES[0]})")
    return _hashed(folder, tuple(stamps))


@lru_cache(maxsize=32)
def _hashed(folder: Path, stamps: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, size, _ in stamps:
        digest.update(f"{name}\0{size}\0".encode())
        with (folder / name).open("rb") as f:
            while chunk := f.read(2**20):
                digest.update(chunk)
    return digest.hexdigest()[:ID_LENGTH]
