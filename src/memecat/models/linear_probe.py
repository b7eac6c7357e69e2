"""Baseline: logistic regression on frozen pooled text and image features.

Multi-label tasks get one binary classifier per label and per-label thresholds chosen on
5-fold out-of-fold predictions over everything `fit` is given (train+dev, never test).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from memecat.data.meme import Meme
from memecat.models.base import MemeModel, ModelConfig
from memecat.models.inputs import encode_inputs
from memecat.models.thresholds import choose_thresholds


class LinearProbeConfig(ModelConfig):
    text_encoder: str = "minilm-l6"
    image_encoder: str = "efficientnet-lite0"
    C: float = 0.05
    class_weight: Literal["balanced"] | None = None
    threshold_mode: Literal["global", "per-label"] = "per-label"
    folds: int = 5


class LinearProbe(MemeModel):
    model_type = "linear-probe"
    config_class = LinearProbeConfig
    trains_on_validation = True  # train+dev together; its honest figures come from `memecat cv`

    def features(self, memes: list[Meme]) -> np.ndarray:
        t = encode_inputs(memes, self.config.text_encoder, self.config.image_encoder)
        return torch.cat([t["text_pooled"], t["image_pooled"]], dim=1).numpy()

    def _fit_weights(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients [L, D] and intercepts [L] on standardised features."""
        cfg = self.config
        if not self.task.multi_label:
            clf = LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, max_iter=2000)
            clf.fit(x, y.argmax(1))
            coef = np.zeros((y.shape[1], x.shape[1]), dtype=np.float32)
            bias = np.full(y.shape[1], -1e4, dtype=np.float32)  # classes unseen in training never win
            if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: logit of the second vs 0
                bias[clf.classes_[0]] = 0.0
                coef[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
            else:
                coef[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
            return coef, bias
        coef = np.zeros((y.shape[1], x.shape[1]), dtype=np.float32)
        bias = np.full(y.shape[1], -1e4, dtype=np.float32)  # labels never seen stay off
        for j in range(y.shape[1]):
            if 0 < y[:, j].sum() < len(y):
                # liblinear: several times faster than lbfgs on these small binary problems.
                clf = LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, solver="liblinear")
                clf.fit(x, y[:, j])
                coef[j], bias[j] = clf.coef_[0], clf.intercept_[0]
        return coef, bias

    def _proba(self, x: np.ndarray, coef: np.ndarray, bias: np.ndarray) -> np.ndarray:
        z = x @ coef.T + bias
        if self.task.multi_label:
            return expit(z)
        return softmax(z, axis=1)

    def fit(self, train: list[Meme], val: list[Meme] | None = None) -> LinearProbe:
        memes = train + (val or [])
        x = self.features(memes)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mean) / self.std
        y = self.task.encode(memes)
        if self.task.multi_label:
            oof = np.zeros_like(y)
            folds = KFold(self.config.folds, shuffle=True, random_state=self.config.seed)
            for tr, te in folds.split(x):
                oof[te] = self._proba(x[te], *self._fit_weights(x[tr], y[tr]))
            self.thresholds = choose_thresholds(y, oof, self.config.threshold_mode)
        self.coef, self.bias = self._fit_weights(x, y)
        return self

    def predict_proba(self, memes: list[Meme]) -> np.ndarray:
        x = (self.features(memes) - self.mean) / self.std
        return self._proba(x, self.coef, self.bias)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.float32))
                for name in ("coef", "bias", "mean", "std")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in ("coef", "bias", "mean", "std"):
            setattr(self, name, state[name].numpy())
