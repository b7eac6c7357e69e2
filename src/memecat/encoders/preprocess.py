"""Image preprocessing in numpy and Pillow: what a frozen image encoder reads, without PyTorch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

GRID_SIDE = 7  # every image encoder hands out a 7x7 grid: 49 region tokens
GRID_TOKENS = GRID_SIDE * GRID_SIDE


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize the shorter side to `resize_size`, centre-crop `image_size`, normalise with mean/std in [0, 1] units."""

    image_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resample: Image.Resampling = Image.Resampling.BICUBIC

    def crop(self, image: Image.Image) -> np.ndarray:
        """The resized centre crop as uint8 [H, W, 3]."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        scale = self.resize_size / min(width, height)
        # Resize only the crop's source box: one resampling pass, same result as resize-then-crop.
        half = self.image_size / scale / 2
        box = (width / 2 - half, height / 2 - half, width / 2 + half, height / 2 + half)
        side = self.image_size
        return np.asarray(image.resize((side, side), self.resample, box=box, reducing_gap=3.0))

    @cached_property
    def _table(self) -> np.ndarray:
        """float32 [3, 256]: each channel's normalised value of every uint8 level, by the float32 operations
        PyTorch did ((x / 255 - mean) / std), so a lookup gives the same bits in one pass."""
        levels = np.arange(256, dtype=np.float32)[None, :] / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(3, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(3, 1)
        return (levels - mean) / std

    def normalise(self, crop: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> float32 [3, H, W]."""
        return np.stack([self._table[channel][crop[:, :, channel]] for channel in range(3)])

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        """float32 [B, 3, image_size, image_size]."""
        return np.stack([self.normalise(self.crop(image)) for image in images])
