"""One meme: its id, its text, its image (a file, bytes or a decoded picture, or none) and its labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from PIL.Image import Image

ImageInput = Union[Path, bytes, "Image", None]


@dataclass(frozen=True)
class Meme:
    """One meme. `image` is a path (a `str` becomes a `Path`), the image file's bytes, a PIL image, or None
    for a text-only meme; `text` may be empty for an image-only one. `labels` holds the dataset's own label
    strings, or None when unlabelled; `source` names the extra training source it came from (None: the task's
    own data)."""

    id: str
    text: str = ""
    image: ImageInput = None
    labels: tuple[str, ...] | None = None
    source: str | None = None

    def __post_init__(self):
        if isinstance(self.image, str):
            object.__setattr__(self, "image", Path(self.image))
        if self.labels is not None and not isinstance(self.labels, tuple):
            object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def has_image(self) -> bool:
        return self.image is not None

    @property
    def image_name(self) -> str:
        """What error messages call the image: its path, or the meme's id for in-memory images."""
        return str(self.image) if isinstance(self.image, Path) else f"<image of meme {self.id}>"
