"""Rows of a dict of equally long tensors: what a feature extractor hands a neural model."""

from __future__ import annotations

import numpy as np
import torch


class TensorDictDataset(torch.utils.data.Dataset):
    """Row i of every tensor, as a dict."""

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
