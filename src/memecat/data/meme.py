from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Meme:
    """One meme. `labels` holds the dataset's own label strings, or None when unlabelled."""

    id: str
    text: str
    image_path: Path | None
    labels: tuple[str, ...] | None = None
