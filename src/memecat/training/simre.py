"""How SimRe is trained: recreated memes in every batch, (meme, category) rows under be/not prompts, InfoNCE
with hard negatives (Eq. 11-12), Adam with StepLR, and the decision rule's F1 for selection.

Recreation (the paper's MixGen): image = lam * pixels_i + (1 - lam) * pixels_j, encoded once per training run;
text = text_i then text_j (their token states concatenated); labels = labels_i OR labels_j.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memecat.data.meme import Meme
from memecat.features import FeatureExtractor
from memecat.metrics import primary_metric, task_scores
from memecat.models.simre import BE, NOT, SimReConfig, SimReNet, margin_scores, to_task_scores
from memecat.models.tensors import subset
from memecat.models.thresholds import global_threshold
from memecat.tasks import Task
from memecat.training.loop import ValidationScored, optimiser

ROW_KEYS = ("image_grid", "text_tokens", "text_mask", "labels")


class SimReLoss(nn.Module):
    """InfoNCE over (meme, category) rows with hard negatives, open_clip ClipLoss-style.

    Row i pairs text and image encoded under the prompt consistent with the meme's label (T+_i, I+_i) and
    under the inconsistent one (T-_i, I-_i). With s+_ij = T+_i . I+_j and s-_ik = T-_i . I-_k:
        Loss_i = -log( exp(s+_ii/t) / (sum_j exp(s+_ij/t) + sum_k exp(s-_ik/t)) )
    so the positive competes with the other rows (in-batch negatives) and with the same memes read under the
    wrong prompt (hard negatives): cross-entropy over the 2R logits [s+_i: ; s-_i:] with target i.
    """

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


def prompt_polarity(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 labels [...] -> (consistent, inconsistent) prompt indices: be for a true label, not for a false one."""
    consistent = torch.where(labels > 0.5, BE, NOT)
    return consistent, 1 - consistent


def training_categories(labels: torch.Tensor, k: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, K] categories per meme: its true ones first, then random others (every category when k is None)."""
    n, c = labels.shape
    if k is None or k >= c:
        return torch.arange(c).expand(n, -1)
    priority = torch.rand(n, c, generator=generator) + 2 * labels
    return priority.topk(k, dim=1).indices


def recreate(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], image_grid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Row-aligned memes a, b and the grids of their mixed pixels -> recreated memes: that image, text a then
    text b, labels a OR b."""
    return {
        "image_grid": image_grid,
        "text_tokens": torch.cat([a["text_tokens"], b["text_tokens"]], dim=1),
        "text_mask": torch.cat([a["text_mask"], b["text_mask"]], dim=1),
        "labels": torch.maximum(a["labels"], b["labels"]),
    }


def random_pairs(n: int, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` pairs (i, j) of distinct indices below n."""
    i = torch.randint(n, (count,), generator=generator)
    j = (i + torch.randint(1, max(n, 2), (count,), generator=generator)) % n
    return i, j


def join(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack two row sets whose text lengths differ (right-padding the shorter)."""
    length = max(a["text_mask"].shape[1], b["text_mask"].shape[1])

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, 0, 0, length - t.shape[1]) if t.dim() == 3 else (0, length - t.shape[1]))

    return {k: torch.cat([pad(a[k]), pad(b[k])] if k.startswith("text") else [a[k], b[k]]) for k in ROW_KEYS}


def recreated_pool(features: FeatureExtractor, memes: list[Meme], tensors: dict[str, torch.Tensor],
                   config: SimReConfig, seed: int) -> dict[str, torch.Tensor]:
    """Recreated memes from mixed pixels, drawn once per training run (encoding them is the costly part)."""
    n = len(memes)
    i, j = random_pairs(n, config.pixel_pairs or n, torch.Generator().manual_seed(seed))
    grids = features.mixed_image_grids(memes, (i.numpy(), j.numpy()), config.mix_lambda)
    # The mixed pixels' grids replace the memes' own, so those are not copied (2 x 0.7 GB on Harm-C).
    rest = {k: v for k, v in tensors.items() if k != "image_grid"}
    return recreate(subset(rest, i), subset(rest, j), grids)


def selection_score(task: Task, rule: str, y: np.ndarray, proba: np.ndarray) -> float:
    """Validation figure for early stopping under the decision rule in use."""
    if task.multi_label:
        threshold = 0.5 if rule == "argmax" else global_threshold(y, proba)
        decided = (proba >= threshold).astype(int)
    else:
        decided = np.eye(task.num_labels, dtype=int)[proba.argmax(1)]
    return task_scores(task, y, decided)[primary_metric(task)]


class SimReObjective(ValidationScored):
    def __init__(self, net: SimReNet, config: SimReConfig, task: Task, pool: dict[str, torch.Tensor] | None):
        super().__init__()
        self.net, self.config, self.task = net, config, task
        self.pool = pool  # recreated memes (labels over the prompted categories); None: no recreation
        self.loss_fn = SimReLoss(config.temperature)

    def with_recreated(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {k: batch[k] for k in ROW_KEYS}
        count = round(self.config.recreated_per_batch * len(batch["labels"]))
        if self.pool is None or count == 0 or len(batch["labels"]) < 2:
            return batch
        return join(batch, subset(self.pool, torch.randint(len(self.pool["labels"]), (count,))))

    def training_step(self, batch, batch_idx):
        batch = self.with_recreated(batch)
        categories = training_categories(batch["labels"], self.config.categories_per_meme)
        consistent, inconsistent = prompt_polarity(batch["labels"].gather(1, categories))
        (text_pos, image_pos), (text_neg, image_neg) = self.net(batch, categories, consistent, inconsistent)
        loss = self.loss_fn(text_pos.flatten(0, 1), image_pos.flatten(0, 1), text_neg.flatten(0, 1),
                            image_neg.flatten(0, 1))
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch, batch_idx):
        s_be, s_not = self.net.similarities(batch)
        self.collect(to_task_scores(margin_scores(s_be, s_not, self.loss_fn.temperature), self.task),
                     batch["labels"])

    def score(self, labels: np.ndarray, proba: np.ndarray) -> float:
        return selection_score(self.task, self.config.rule, labels, proba)

    def configure_optimizers(self):
        return optimiser(self.net, self.config.train)
