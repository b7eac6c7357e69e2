"""Decision thresholds for multi-label scores, chosen to maximise F1 on held-out predictions."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def global_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The one threshold for all labels that maximises micro-F1."""
    scores = [f1_score(y, proba >= t, average="micro", zero_division=0) for t in GRID]
    return float(GRID[int(np.argmax(scores))])


def per_label_thresholds(y: np.ndarray, proba: np.ndarray, fallback: float | None = None,
                         min_support: int = 5) -> np.ndarray:
    """One threshold per label maximising that label's F1; rare labels keep the global one.

    Labels with fewer than `min_support` positives have too little signal to tune; they
    fall back to the global micro-F1 threshold so they neither vanish nor flood.
    """
    fallback = global_threshold(y, proba) if fallback is None else fallback
    out = np.full(y.shape[1], fallback, dtype=np.float32)
    for j in range(y.shape[1]):
        if y[:, j].sum() < min_support:
            continue
        scores = [f1_score(y[:, j], proba[:, j] >= t, zero_division=0) for t in GRID]
        out[j] = GRID[int(np.argmax(scores))]
    return out


def choose_thresholds(y: np.ndarray, proba: np.ndarray, mode: str) -> np.ndarray:
    if mode == "global":
        return np.full(y.shape[1], global_threshold(y, proba), dtype=np.float32)
    if mode == "per-label":
        return per_label_thresholds(y, proba)
    raise ValueError(f"threshold mode must be 'global' or 'per-label', got {mode!r}")
