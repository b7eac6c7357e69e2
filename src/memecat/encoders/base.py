"""The encoder interface: backbones that turn text or images into token features; heads live elsewhere."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import PreTrainedTokenizerBase

from memecat.encoders.preprocess import GRID_SIDE, GRID_TOKENS, ImagePreprocessing
from memecat.encoders.tokenize import TextTokenizer

__all__ = ["GRID_SIDE", "GRID_TOKENS", "Encoder", "ImageEncoder", "ImageFeatures", "ImagePreprocessing",
           "TextEncoder", "TextFeatures", "map_features", "weights_hash"]


class TextFeatures(NamedTuple):
    tokens: torch.Tensor  # [B, T, d]
    mask: torch.Tensor  # [B, T] bool, True on real tokens
    pooled: torch.Tensor  # [B, d]


class ImageFeatures(NamedTuple):
    grid: torch.Tensor  # [B, 49, d]
    pooled: torch.Tensor  # [B, d]


def weights_hash(module: nn.Module) -> str:
    """sha256 over every tensor of the state dict: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{flat.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()


def map_features(feature_map: torch.Tensor) -> ImageFeatures:
    """A [B, d, h, w] feature map as 7x7 grid tokens plus the mean over the full map."""
    pooled = feature_map.mean(dim=(2, 3))
    if feature_map.shape[-2:] != (GRID_SIDE, GRID_SIDE):
        feature_map = F.adaptive_avg_pool2d(feature_map, GRID_SIDE)
    return ImageFeatures(grid=feature_map.flatten(2).transpose(1, 2), pooled=pooled)


class Encoder(nn.Module):
    """What text and image encoders share: a name, a width, frozen-by-default weights and a fingerprint."""

    def __init__(self, name: str, dim: int):
        super().__init__()
        self.name = name
        self.dim = dim
        self._fingerprint: str | None = None
        # The files its weights were read from (a checkpoint folder, a weights file): an export of it is
        # recorded for use without PyTorch only while they are unchanged. Empty: never recorded.
        self.sources: tuple[Path, ...] = ()

    def freeze(self) -> Encoder:
        """Eval mode, no gradients: the default for feature extraction."""
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> Encoder:
        # A frozen encoder inside a trainable model stays in eval mode: no dropout noise, no batch-norm drift.
        return super().train(mode and any(p.requires_grad for p in self.parameters()))

    def preprocessing_signature(self) -> str:
        """Everything besides the weights that changes the features (tokenizer, image transform)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short stable hash of name, weights and preprocessing; computed once, so it suits frozen weights."""
        if self._fingerprint is None:
            parts = (self.name, weights_hash(self), self.preprocessing_signature())
            self._fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        return self._fingerprint


class TextEncoder(Encoder):
    """Text in, token features out. Subclasses implement `forward`."""

    def __init__(self, name: str, dim: int, tokenizer: PreTrainedTokenizerBase, max_length: int):
        super().__init__(name, dim)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_token_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._text_tokenizer: TextTokenizer | None = None

    padding = "longest"  # or "max_length", for encoders trained on fixed-length input

    @property
    def text_tokenizer(self) -> TextTokenizer:
        """The tokenizer's fast backend with this encoder's truncation and padding: what every path tokenizes with."""
        if self._text_tokenizer is None:
            self._text_tokenizer = TextTokenizer.from_json(
                self.tokenizer.backend_tokenizer.to_str(), max_length=self.max_length, pad_token_id=self.pad_token_id,
                fixed_length=self.padding == "max_length", padding_side=self.tokenizer.padding_side,
                truncation_side=self.tokenizer.truncation_side)
        return self._text_tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """input_ids and attention_mask, padded as `padding` says, truncated at max_length."""
        ids, mask = self.text_tokenizer(list(texts))
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

    def convert_ids_to_tokens(self, ids: list[int] | torch.Tensor) -> list[str]:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self.tokenizer.convert_ids_to_tokens(ids)

    def preprocessing_signature(self) -> str:
        # Hash the tokenizer's content, not its path, so the fingerprint is the same on every machine.
        vocab = hashlib.sha256(self.tokenizer.backend_tokenizer.to_str().encode()).hexdigest()
        return f"{type(self.tokenizer).__name__}:{vocab}:max_length={self.max_length}"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        raise NotImplementedError


class ImageEncoder(Encoder):
    """Images in, a 7x7 grid of region features out. Subclasses implement `forward`."""

    def __init__(self, name: str, dim: int, preprocessing: ImagePreprocessing):
        super().__init__(name, dim)
        self.preprocessing = preprocessing
        self.image_size = preprocessing.image_size

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """[B, 3, image_size, image_size] float pixels, normalised for this model."""
        return torch.from_numpy(self.preprocessing(images))

    def preprocessing_signature(self) -> str:
        return repr(self.preprocessing)

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        raise NotImplementedError
