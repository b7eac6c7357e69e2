"""Logistic regression on four views of a meme, their logits averaged (a product of experts).

- text-encoder, image-encoder: frozen pooled text and image features (MiniLM, EfficientNet-Lite0 by default),
  standardised; the image view reads only memes that have an image, and each meme averages the views it has;
- char-ngrams: TF-IDF of the text's character 2-5-grams, which sees spelling, capitals and slogans that a
  sentence encoder smooths away;
- word-ngrams: TF-IDF of its words and word pairs, which a word-level regression weighs differently.
The n-gram views are hashed, so the model folder holds no vocabulary.

Prediction runs on numpy alone (models/ngrams.py hashes as scikit-learn does); fitting imports scikit-learn.

Multi-label tasks get one binary classifier per label and view, and thresholds chosen on 5-fold
out-of-fold predictions of the task's own memes `fit` is given (train+dev, never test).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from memecat.data.meme import Meme
from memecat.models.base import EncoderConfig, MemeModel
from memecat.models.ngrams import NgramHasher, SparseRows
from memecat.models.registry import register_model
from memecat.models.thresholds import choose_thresholds

VIEWS = ("text-encoder", "image-encoder", "char-ngrams", "word-ngrams")
ENCODER_VIEWS = {"text-encoder": "text_pooled", "image-encoder": "image_pooled"}  # view -> encode_inputs key
NGRAM_VIEWS = {"char-ngrams": ("char_wb", (2, 5)), "word-ngrams": ("word", (1, 2))}  # analyzer, n-gram range
View = Literal["text-encoder", "image-encoder", "char-ngrams", "word-ngrams"]


class LinearProbeConfig(EncoderConfig):
    # Defaults chosen by 5-fold CV over SemEval train+dev (docs/results.md).
    views: tuple[View, ...] = VIEWS
    # The views that learn from extra sources' memes (None: every view); the others fit the task's own only.
    extra_views: tuple[View, ...] | None = None
    C: float = 0.003  # inverse regularisation of the encoder views
    ngram_C: float = 1.0  # ... and of the n-gram views
    ngram_features: int = 2**17  # hashed n-gram columns
    class_weight: Literal["balanced"] | None = "balanced"  # rare techniques weigh as much as frequent ones
    threshold_mode: Literal["global", "per-label", "joint"] = "joint"
    folds: int = 5

    @property
    def trains_on_eval_memes(self) -> bool:
        return True  # eval memes join training; thresholds come from out-of-fold scores, honest figures from CV


@register_model("linear-probe")
class LinearProbe(MemeModel):
    """Logistic regressions on encoder features and n-grams, their logits averaged; the best model by CV."""

    config_class = LinearProbeConfig

    # --- features ----------------------------------------------------------------------------
    def hasher(self, view: str) -> NgramHasher:
        analyzer, ngram_range = NGRAM_VIEWS[view]
        return NgramHasher(analyzer, ngram_range, self.config.ngram_features)

    def raw_views(self, memes: list[Meme]) -> tuple[dict, dict[str, np.ndarray]]:
        """Each view's features before the scaling that `fit` learns, and per view which memes it can read
        (the image view only those with an image)."""
        out, present = {}, {}
        if set(ENCODER_VIEWS) & set(self.config.views):
            t = self.features.encode_arrays(memes, pooled_only=True)
            for view, key in ENCODER_VIEWS.items():
                if view in self.config.views:
                    out[view] = t[key]
            if "image-encoder" in out:
                present["image-encoder"] = t["image_present"]
        for view in NGRAM_VIEWS:
            if view in self.config.views:
                out[view] = self.hasher(view).transform([m.text for m in memes])
        everyone = np.ones(len(memes), dtype=bool)
        return out, {view: present.get(view, everyone) for view in out}

    def fit_scaling(self, raw: dict, rows: dict[str, np.ndarray]) -> None:
        from sklearn.feature_extraction.text import TfidfTransformer

        self.mean, self.std = {}, {}
        for view in ENCODER_VIEWS:
            if view in raw:
                x = raw[view][rows[view]]
                self.mean[view], self.std[view] = x.mean(0), x.std(0) + 1e-6
        self.idf = {view: TfidfTransformer(sublinear_tf=True).fit(raw[view][rows[view]].to_scipy()).idf_.astype(
                    np.float32) for view in NGRAM_VIEWS if view in raw}

    def scaled(self, raw: dict) -> dict:
        out = {view: (raw[view] - self.mean[view]) / self.std[view] for view in self.mean}
        for view in self.idf:
            out[view] = raw[view].tfidf(self.idf[view])
        return out

    # --- per view: logistic regression -------------------------------------------------------
    def _fit_weights(self, x, y: np.ndarray, C: float, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients [L, D] and intercepts [L]."""
        from sklearn.linear_model import LogisticRegression

        cfg = self.config
        if isinstance(x, SparseRows):
            x = x.to_scipy()
        coef = np.zeros((y.shape[1], x.shape[1]), dtype=np.float32)
        bias = np.full(y.shape[1], -1e4, dtype=np.float32)  # labels or classes never seen stay off
        sample_weight = None if np.all(weight == 1) else weight
        if not self.task.multi_label:
            clf = LogisticRegression(C=C, class_weight=cfg.class_weight, max_iter=2000)
            clf.fit(x, y.argmax(1), sample_weight=sample_weight)
            if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: logit of the second vs 0
                bias[clf.classes_[0]] = 0.0
                coef[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
            else:
                coef[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
            return coef, bias
        for j in range(y.shape[1]):
            if 0 < y[:, j].sum() < len(y):
                # liblinear's dual solver: with more columns than rows (or ~10^4 rows), several times faster than
                # the primal one or lbfgs, to the same optimum. It visits rows in a random order: seeded, so a
                # refit gives the same weights.
                clf = LogisticRegression(C=C, class_weight=cfg.class_weight, solver="liblinear", dual=True,
                                         random_state=cfg.seed)
                clf.fit(x, y[:, j], sample_weight=sample_weight)
                coef[j], bias[j] = clf.coef_[0], clf.intercept_[0]
        return coef, bias

    def _view_C(self, view: str) -> float:
        return self.config.ngram_C if view in NGRAM_VIEWS else self.config.C

    def _fit_views(self, views: dict, rows: dict[str, np.ndarray], y: np.ndarray,
                   weight: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {view: self._fit_weights(x[rows[view]], y[rows[view]], self._view_C(view), weight[rows[view]])
                for view, x in views.items()}

    def _proba(self, views: dict, present: dict[str, np.ndarray],
               weights: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Per meme, the logits of the views that can read it averaged, then the link: a view that is sure
        moves the result more than under a probability average (5-fold CV over SemEval seeds 0-4: label AUC
        0.729 against 0.722, p = 0.008)."""
        total, count = 0.0, 0.0
        for view, x in views.items():
            on = present[view].astype(np.float64)[:, None]
            total = total + on * (np.asarray(x @ weights[view][0].T) + weights[view][1])
            count = count + on
        z = total / np.maximum(count, 1.0)
        return _expit(z) if self.task.multi_label else _softmax(z)

    # --- the verbs ---------------------------------------------------------------------------
    def _fit(self, memes: list[Meme], eval_memes: list[Meme]) -> None:
        from sklearn.model_selection import KFold

        memes = memes + eval_memes
        raw, present = self.raw_views(memes)
        y = self.task.encode(memes)
        weight = self.sample_weights(memes)
        self.note_training_data(memes)
        own = np.array([m.source is None for m in memes])
        learners = set(self.config.views if self.config.extra_views is None else self.config.extra_views)
        rows = {view: present[view] & (own | (view in learners)) for view in raw}
        if self.task.multi_label:
            # Thresholds from out-of-fold scores of the task's own memes (extra memes train every fold, since
            # their label frequencies are not the task's), the scaling refitted in each fold.
            own_idx = np.flatnonzero(own) if own.any() else np.arange(len(memes))
            oof = np.zeros((len(own_idx), y.shape[1]))
            folds = KFold(self.config.folds, shuffle=True, random_state=self.config.seed)
            for tr, te in folds.split(own_idx):
                fold_rows = {view: r.copy() for view, r in rows.items()}
                for r in fold_rows.values():
                    r[own_idx[te]] = False
                self.fit_scaling(raw, fold_rows)
                views = self.scaled(raw)
                held = own_idx[te]
                oof[te] = self._proba({v: x[held] for v, x in views.items()}, {v: p[held] for v, p in present.items()},
                                      self._fit_views(views, fold_rows, y, weight))
            self.thresholds = choose_thresholds(y[own_idx], oof, self.config.threshold_mode)
        self.fit_scaling(raw, rows)
        self.weights = self._fit_views(self.scaled(raw), rows, y, weight)

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        raw, present = self.raw_views(memes)
        return self._proba(self.scaled(raw), present, self.weights)

    def _explain(self, memes: list[Meme], top_k: int = 8) -> list[dict]:
        """Per label: each view's probability and the words of the text that pushed the label up most, as
        "tokens" like label-attention's. A word's push is the sum, over the n-gram views, of TF-IDF value x
        coefficient of the n-grams it is part of; an n-gram found in several words is shared evenly."""
        from memecat.models.probe_explain import word_pushes

        raw, present = self.raw_views(memes)
        views = self.scaled(raw)
        per_view = {view: self._proba({view: x}, {view: present[view]}, self.weights) for view, x in views.items()}
        analyzers = {view: self.hasher(view).build_analyzer() for view in NGRAM_VIEWS if view in views}
        result = []
        for n, meme in enumerate(memes):
            rows = {view: views[view][n] for view in analyzers}
            tokens = word_pushes(self, meme.text, rows, analyzers, top_k) if analyzers else {}
            result.append({label: {"views": {v: round(float(p[n, j]), 4) for v, p in per_view.items()
                                             if present[v][n]},
                                   **({"tokens": tokens[label]} if tokens else {})}
                           for j, label in enumerate(self.task.labels)})
        return result

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {}
        for view, (coef, bias) in self.weights.items():
            state[f"{view}.coef"], state[f"{view}.bias"] = coef, bias
        for view in self.mean:
            state[f"{view}.mean"], state[f"{view}.std"] = self.mean[view], self.std[view]
        for view, idf in self.idf.items():
            state[f"{view}.idf"] = idf
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        arrays = {k: np.asarray(v) for k, v in state.items()}
        missing = [f"{view}.coef" for view in self.config.views if f"{view}.coef" not in arrays]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
        self.weights = {view: (arrays[f"{view}.coef"], arrays[f"{view}.bias"]) for view in self.config.views}
        encoder_views = [view for view in ENCODER_VIEWS if view in self.config.views]
        self.mean = {view: arrays[f"{view}.mean"] for view in encoder_views}
        self.std = {view: arrays[f"{view}.std"] for view in encoder_views}
        self.idf = {view: arrays[f"{view}.idf"] for view in NGRAM_VIEWS if view in self.config.views}
        for view, (coef, bias) in self.weights.items():
            width = len(self.idf[view]) if view in self.idf else len(self.mean[view])
            if coef.shape != (self.task.num_labels, width) or bias.shape != (self.task.num_labels,):
                raise ValueError(f"{view} weights are {coef.shape}, expected ({self.task.num_labels}, {width})")


def _exp(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _expit(z: np.ndarray) -> np.ndarray:
    """SciPy's expit, 1 / (1 + exp(-z)), without importing SciPy: its exp is the C library's, as math.exp is
    (numpy's own exp can differ in the last bit)."""
    with np.errstate(over="ignore"):  # exp(-z) past float range is inf, so the score is 0, as SciPy's
        return 1.0 / (1.0 + np.frompyfunc(_exp, 1, 1)(-z).astype(np.float64))


def _softmax(z: np.ndarray) -> np.ndarray:
    """SciPy's softmax over axis 1, the same operations in the same order."""
    shifted = np.exp(z - np.amax(z, axis=1, keepdims=True))
    return shifted / np.sum(shifted, axis=1, keepdims=True)
