"""How the label-attention net is trained: BCE (multi-label) or cross-entropy (single-label), each row weighted
by its source's sample weight, Adam, and micro-F1 at the best global threshold for selection."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memecat.metrics import primary_metric, task_scores
from memecat.models.label_attention import LabelAttentionNet, scores_from_logits
from memecat.models.thresholds import global_threshold
from memecat.tasks import Task
from memecat.training.config import TrainConfig
from memecat.training.loop import ValidationScored, optimiser


def selection_score(task: Task, y: np.ndarray, proba: np.ndarray) -> float:
    """Validation figure for early stopping: micro-F1 at the best global threshold (multi-label)."""
    if task.multi_label:
        decided = (proba >= global_threshold(y, proba)).astype(int)
    else:
        decided = np.eye(task.num_labels, dtype=int)[proba.argmax(1)]
    return task_scores(task, y, decided)[primary_metric(task)]


class LabelAttentionObjective(ValidationScored):
    def __init__(self, net: LabelAttentionNet, task: Task, config: TrainConfig):
        super().__init__()
        self.net, self.task, self.config = net, task, config

    def row_losses(self, logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
        """The loss, "mean" over the batch or "none": one value per row (BCE averaged over its labels)."""
        if self.task.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, labels, reduction=reduction)
            return loss if reduction == "mean" else loss.mean(dim=-1)
        return F.cross_entropy(logits, labels.argmax(dim=-1), reduction=reduction)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss over rows, each weighted by `weight` [B] (its source's sample weight) when given."""
        if weight is None or bool((weight == 1).all()):  # the plain mean, bit for bit
            return self.row_losses(logits, labels, "mean")
        weight = weight.to(logits.dtype)
        # Clamped: a batch of weight-0 rows only (a source switched off) gives 0, not 0 / 0.
        return (self.row_losses(logits, labels, "none") * weight).sum() / weight.sum().clamp(min=1e-12)

    def training_step(self, batch, batch_idx):
        logits, _ = self.net(batch)
        loss = self.loss(logits, batch["labels"], batch.get("weight"))
        self.log("train_loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch, batch_idx):
        logits, _ = self.net(batch)
        self.collect(scores_from_logits(logits, self.task), batch["labels"])

    def score(self, labels: np.ndarray, proba: np.ndarray) -> float:
        return selection_score(self.task, labels, proba)

    def configure_optimizers(self):
        return optimiser(self.net, self.config)
