from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Meme:
    """One meme. `labels` holds the dataset's own label strings, or None when unlabelled.

    A meme may lack an image (`image_path` None: text-only sources such as SemEval-2024) or have empty text
    (an image-only meme). `source` names the extra training source it came from; None is the task's own data.
    """

    id: str
    text: str
    image_path: Path | None
    labels: tuple[str, ...] | None = None
    source: str | None = None
