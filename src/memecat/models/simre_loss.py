"""SimRe's contrastive objective (Eq. 11-12): InfoNCE over (meme, category) rows with hard negatives.

Row i pairs text and image encoded under the prompt consistent with the meme's label (T+_i, I+_i) and under
the inconsistent one (T-_i, I-_i). With s+_ij = T+_i . I+_j and s-_ik = T-_i . I-_k:

    Loss_i = -log( exp(s+_ii/t) / (sum_j exp(s+_ij/t) + sum_k exp(s-_ik/t)) )

so the positive competes with the other rows (in-batch negatives) and with the same memes read under the
wrong prompt (hard negatives). This is cross-entropy over the 2R logits [s+_i: ; s-_i:] with target i.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SimReLoss(nn.Module):
    """open_clip ClipLoss-style: `get_logits` builds the similarity matrices, `forward` the mean InfoNCE."""

    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def get_logits(self, text_pos: torch.Tensor, image_pos: torch.Tensor, text_neg: torch.Tensor,
                   image_neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[R, w] features (L2-normalised by the caller) -> (s+/t [R, R], s-/t [R, R])."""
        return text_pos @ image_pos.T / self.temperature, text_neg @ image_neg.T / self.temperature

    def forward(self, text_pos: torch.Tensor, image_pos: torch.Tensor, text_neg: torch.Tensor,
                image_neg: torch.Tensor) -> torch.Tensor:
        logits_pos, logits_neg = self.get_logits(text_pos, image_pos, text_neg, image_neg)
        targets = torch.arange(len(logits_pos), device=logits_pos.device)
        return F.cross_entropy(torch.cat([logits_pos, logits_neg], dim=1), targets)
