"""Baseline: predict the same labels for every meme (the set that maximises training micro-F1)."""

from __future__ import annotations

import numpy as np

from memecat.data.meme import Meme
from memecat.models.base import MemeModel
from memecat.models.registry import register_model


@register_model("majority")
class MajorityModel(MemeModel):
    """The same labels for every meme: the baseline any model must beat."""

    def _fit(self, memes: list[Meme], eval_memes: list[Meme]) -> None:
        from memecat.metrics import semeval_scores

        self.note_training_data(memes)
        y = self.task.encode(memes)
        self.prior = y.mean(axis=0).astype(np.float32)
        if not self.task.multi_label:
            return
        # Grow the constant label set by frequency while training micro-F1 still rises.
        chosen = np.zeros(self.task.num_labels, dtype=np.int64)
        best = 0.0
        for label in np.argsort(-self.prior):
            trial = chosen.copy()
            trial[label] = 1
            score = semeval_scores(y, np.tile(trial, (len(y), 1)))["micro_f1"]
            if score <= best:
                break
            chosen, best = trial, score
        # Chosen labels score 1, the rest 0, so the default 0.5 thresholds reproduce the set.
        self.prior = chosen.astype(np.float32)

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        return np.tile(self.prior, (len(memes), 1))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"prior": self.prior}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.prior = np.asarray(state["prior"], dtype=np.float32)
        if self.prior.shape != (self.task.num_labels,):
            raise ValueError(f"prior has shape {self.prior.shape}, expected ({self.task.num_labels},)")
