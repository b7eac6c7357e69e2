"""What the feature path needs of a frozen encoder: its cache key, its preprocessing and a function that runs it.

Built from a PyTorch encoder (encoders/runtime.py) or, without PyTorch, from the record of its ONNX export
(encoders/exports.py); either way the feature path runs the same numpy code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memecat.encoders.preprocess import ImagePreprocessing
from memecat.encoders.tokenize import TextTokenizer

# (inputs as numpy) -> (token states [B, T, d] or grid [B, 49, d], pooled [B, d]), float32
Run = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass
class FrozenEncoder:
    name: str  # the feature cache and ONNX export folder name
    digest: str  # the encoder's fingerprint: name, weights and preprocessing
    dim: int
    run: Run

    def fingerprint(self) -> str:
        return self.digest


@dataclass
class FrozenImageEncoder(FrozenEncoder):
    preprocessing: ImagePreprocessing


@dataclass
class FrozenTextEncoder(FrozenEncoder):
    tokenizer: TextTokenizer
