"""Turn memes into the tensors the neural models read: text token states and the 7x7 image grid.

Frozen encoders (and the frozen layers of a partly fine-tuned one) go through the on-disk feature cache.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import torch

from memecat.data.meme import Meme
from memecat.encoders import get_image_encoder, get_text_encoder
from memecat.encoders.cache import FeatureCache, default_cache_dir
from memecat.encoders.text import split_top
from memecat.features import image_features, text_features


@lru_cache(maxsize=8)
def text_encoder(name: str):
    return get_text_encoder(name)


@lru_cache(maxsize=8)
def frozen_text_encoder(name: str, finetune_layers: int = 0):
    """The text encoder below its last `finetune_layers` layers: what the cache and ONNX Runtime serve."""
    return split_top(text_encoder(name), finetune_layers)[0]


@lru_cache(maxsize=8)
def image_encoder(name: str):
    return get_image_encoder(name)


@lru_cache(maxsize=1)
def feature_cache() -> FeatureCache:
    return FeatureCache(default_cache_dir())


def encode_inputs(memes: list[Meme], text_name: str, image_name: str, finetune_layers: int = 0,
                  texts: list[str] | None = None, progress: bool = True,
                  pooled_only: bool = False) -> dict[str, torch.Tensor]:
    """Tensors for `memes`: image grid, pooled vector and whether the meme has an image; token states of the
    text encoder's frozen layers (all of them unless the model fine-tunes the last `finetune_layers`).

    `texts` overrides the memes' own texts (SimRe writes prompts into them); `pooled_only` keeps the pooled
    vectors and the image mask alone, for models that read nothing else.
    """
    if texts is not None:
        memes = [replace(m, text=t) for m, t in zip(memes, texts)]
    image = image_features(memes, image_encoder(image_name), feature_cache(), progress=progress,
                           grids=not pooled_only)
    text = text_features(memes, frozen_text_encoder(text_name, finetune_layers), feature_cache(),
                         progress=progress, tokens=not pooled_only)
    out = {
        "image_pooled": torch.from_numpy(np.ascontiguousarray(image["pooled"], dtype=np.float32)),
        "image_present": image["present"],
        "text_pooled": torch.from_numpy(np.ascontiguousarray(text["pooled"], dtype=np.float32)),
    }
    if pooled_only:
        return out
    out["image_grid"] = torch.from_numpy(np.ascontiguousarray(image["grid"], dtype=np.float32))
    out["text_tokens"] = torch.from_numpy(np.ascontiguousarray(text["tokens"], dtype=np.float32))
    out["text_mask"] = torch.from_numpy(np.asarray(text["mask"])).bool()
    out["input_ids"] = torch.from_numpy(np.asarray(text["input_ids"])).long()
    return out


class TensorDictDataset(torch.utils.data.Dataset):
    """Rows of a dict of equally long tensors."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.length = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def subset(tensors: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    return {k: v[idx] for k, v in tensors.items()}
