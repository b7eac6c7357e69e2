"""Turn memes into the tensors the neural models read: text tokens (or ids) and the 7x7 image grid.

Frozen encoders go through the on-disk feature cache; a text encoder being fine-tuned gets ids.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from memecat.data.meme import Meme
from memecat.encoders import get_image_encoder, get_text_encoder
from memecat.encoders.cache import FeatureCache, default_cache_dir
from memecat.features import image_features, text_features


@lru_cache(maxsize=8)
def text_encoder(name: str):
    return get_text_encoder(name)


@lru_cache(maxsize=8)
def image_encoder(name: str):
    return get_image_encoder(name)


@lru_cache(maxsize=1)
def feature_cache() -> FeatureCache:
    return FeatureCache(default_cache_dir())


def encode_inputs(memes: list[Meme], text_name: str, image_name: str, finetune_text: bool,
                  texts: list[str] | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """Tensors for `memes`: image grid and pooled vector; text ids (fine-tuning) or frozen token features.

    `texts` overrides the memes' own texts (SimRe writes prompts into them).
    """
    if texts is not None:
        memes = [Meme(id=m.id, text=t, image_path=m.image_path, labels=m.labels) for m, t in zip(memes, texts)]
    image = image_features(memes, image_encoder(image_name), feature_cache(), progress=progress)
    out = {
        "image_grid": torch.from_numpy(np.ascontiguousarray(image["grid"], dtype=np.float32)),
        "image_pooled": torch.from_numpy(np.ascontiguousarray(image["pooled"], dtype=np.float32)),
    }
    if finetune_text:
        tokens = text_encoder(text_name).tokenize([m.text for m in memes])
        out["input_ids"] = tokens["input_ids"]
        out["attention_mask"] = tokens["attention_mask"].bool()
    else:
        text = text_features(memes, text_encoder(text_name), feature_cache(), progress=progress)
        out["text_tokens"] = torch.from_numpy(np.ascontiguousarray(text["tokens"], dtype=np.float32))
        out["text_mask"] = torch.from_numpy(np.asarray(text["mask"])).bool()
        out["input_ids"] = torch.from_numpy(np.asarray(text["input_ids"])).long()
        out["text_pooled"] = torch.from_numpy(np.ascontiguousarray(text["pooled"], dtype=np.float32))
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
