"""Decision rules chosen to maximise F1 on held-out predictions: thresholds for multi-label scores, class
offsets for single-label ones."""

from __future__ import annotations

import numpy as np

GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def global_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The one threshold for all labels that maximises micro-F1."""
    from sklearn.metrics import f1_score  # here: predicting with chosen thresholds needs no scikit-learn

    scores = [f1_score(y, proba >= t, average="micro", zero_division=0) for t in GRID]
    return float(GRID[int(np.argmax(scores))])


def per_label_thresholds(y: np.ndarray, proba: np.ndarray, fallback: float | None = None,
                         min_support: int = 5) -> np.ndarray:
    """One threshold per label maximising that label's F1; rare labels keep the global one.

    Labels with fewer than `min_support` positives have too little signal to tune; they
    fall back to the global micro-F1 threshold so they neither vanish nor flood.
    """
    from sklearn.metrics import f1_score

    fallback = global_threshold(y, proba) if fallback is None else fallback
    out = np.full(y.shape[1], fallback, dtype=np.float32)
    for j in range(y.shape[1]):
        if y[:, j].sum() < min_support:
            continue
        scores = [f1_score(y[:, j], proba[:, j] >= t, zero_division=0) for t in GRID]
        out[j] = GRID[int(np.argmax(scores))]
    return out


def joint_thresholds(y: np.ndarray, proba: np.ndarray, passes: int = 2, macro_weight: float = 1.0) -> np.ndarray:
    """Per-label thresholds chosen together to maximise micro-F1 + macro_weight * macro-F1, by coordinate ascent
    from the global threshold: a label's threshold moves only if the sum rises, so a rare label is switched on
    where it adds to macro-F1 more than its false alarms cost micro-F1 (per-label F1 alone ignores that)."""
    y = np.asarray(y, dtype=bool)
    above = proba[:, :, None] >= GRID  # [N, L, G]
    tp = (above & y[:, :, None]).sum(0)  # [L, G] counts of each label at each grid threshold
    fp = above.sum(0) - tp
    fn = y.sum(0)[:, None] - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)  # sklearn's zero_division=0
    labels = np.arange(y.shape[1])
    pick = np.full(y.shape[1], int(np.argmin(np.abs(GRID - global_threshold(y, proba)))))

    def objective(pick: np.ndarray) -> float:
        t, p, n = tp[labels, pick].sum(), fp[labels, pick].sum(), fn[labels, pick].sum()
        return (2 * t / (2 * t + p + n) if t + p + n else 0.0) + macro_weight * f1[labels, pick].mean()

    best = objective(pick)
    for _ in range(passes):
        for j in labels:
            for g in range(len(GRID)):
                trial = pick.copy()
                trial[j] = g
                score = objective(trial)
                if score > best + 1e-12:
                    best, pick = score, trial
    return GRID[pick].astype(np.float32)


def choose_thresholds(y: np.ndarray, proba: np.ndarray, mode: str) -> np.ndarray:
    if mode == "global":
        return np.full(y.shape[1], global_threshold(y, proba), dtype=np.float32)
    if mode == "per-label":
        return per_label_thresholds(y, proba)
    if mode == "joint":
        return joint_thresholds(y, proba)
    raise ValueError(f"threshold mode must be 'global', 'per-label' or 'joint', got {mode!r}")


OFFSET_GRID = np.round(np.linspace(-3, 3, 25), 3)


def log_scores(proba: np.ndarray) -> np.ndarray:
    """The scale class offsets are added on, when chosen and when applied."""
    return np.log(np.clip(proba, 1e-12, 1))


def class_offsets(y: np.ndarray, proba: np.ndarray, passes: int = 2) -> np.ndarray:
    """Offsets added to the log scores before the argmax, chosen to maximise macro-F1 by coordinate ascent from
    zero: a rare class the scores under-predict gets a boost. An offset moves only if macro-F1 rises, so scores
    that are already balanced keep zeros. y one-hot [N, C]."""
    from sklearn.metrics import f1_score

    gold, logp = y.argmax(1), log_scores(proba)
    classes = np.arange(y.shape[1])

    def macro_f1(offsets: np.ndarray) -> float:
        return f1_score(gold, (logp + offsets).argmax(1), labels=classes, average="macro", zero_division=0)

    offsets = np.zeros(y.shape[1])
    best = macro_f1(offsets)
    for _ in range(passes):
        for c in classes[1:]:  # one class stays at zero: only differences move the argmax
            for value in OFFSET_GRID:
                trial = offsets.copy()
                trial[c] = value
                score = macro_f1(trial)
                if score > best + 1e-12:
                    best, offsets = score, trial
    return offsets.astype(np.float32)
