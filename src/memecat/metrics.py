"""Scores exactly as the task organisers compute them.

SemEval-2021 Task 6: scikit-learn f1_score on multi-hot rows with every technique a column
(zero_division=0), micro and macro. Harm: accuracy, macro-F1 and, for ordered levels, MMAE.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score


def semeval_scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """gold, pred: [N, L] 0/1 matrices with every label a column."""
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    return {
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
    }


def mean_label_auc(gold: np.ndarray, proba: np.ndarray) -> float:
    """Ranking quality whatever the thresholds: the mean per-label ROC AUC over the labels that are both
    present and absent among the scored memes."""
    gold = np.asarray(gold, dtype=int)
    present = [j for j in range(gold.shape[1]) if 0 < gold[:, j].sum() < len(gold)]
    if not present:
        return float("nan")
    return float(np.mean([roc_auc_score(gold[:, j], proba[:, j]) for j in present]))


def per_label_table(gold: np.ndarray, pred: np.ndarray, labels: tuple[str, ...] | list[str]) -> list[dict]:
    """Precision, recall, F1 and support per label (multi-hot or one-hot columns)."""
    p, r, f, s = precision_recall_fscore_support(
        np.asarray(gold, dtype=int), np.asarray(pred, dtype=int), average=None, zero_division=0
    )
    return [
        {"label": label, "precision": float(pi), "recall": float(ri), "f1": float(fi), "support": int(si)}
        for label, pi, ri, fi, si in zip(labels, p, r, f, s)
    ]


def mmae(gold_levels: np.ndarray, pred_levels: np.ndarray) -> float:
    """Macro mean absolute error: mean over true classes of the mean |level error| within the class."""
    gold_levels, pred_levels = np.asarray(gold_levels), np.asarray(pred_levels)
    per_class = [np.abs(pred_levels[gold_levels == c] - c).mean() for c in np.unique(gold_levels)]
    return float(np.mean(per_class))


def harm_scores(gold_idx: np.ndarray, pred_idx: np.ndarray, ordinal: bool = False) -> dict[str, float]:
    """gold_idx, pred_idx: class indices [N]; labels in task order (ordered levels for MMAE)."""
    gold_idx, pred_idx = np.asarray(gold_idx, dtype=int), np.asarray(pred_idx, dtype=int)
    scores = {
        "acc": float(accuracy_score(gold_idx, pred_idx)),
        "macro_f1": float(f1_score(gold_idx, pred_idx, average="macro", zero_division=0)),
    }
    if ordinal:
        scores["mmae"] = mmae(gold_idx, pred_idx)
    return scores


def task_scores(task, gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Scores of 0/1 matrices [N, L] under the task's own metric."""
    if task.metric == "semeval":
        return semeval_scores(gold, pred)
    return harm_scores(np.argmax(gold, axis=1), np.argmax(pred, axis=1), ordinal=task.ordinal)


def primary_metric(task) -> str:
    """The figure model selection maximises."""
    return "micro_f1" if task.metric == "semeval" else "macro_f1"


def per_label_text(gold: np.ndarray, pred: np.ndarray, labels: tuple[str, ...] | list[str]) -> str:
    """The per-label table as aligned plain text, for the terminal."""
    width = max(len("label"), *(len(label) for label in labels)) + 1
    lines = [f"{'label':<{width}} {'P':>6} {'R':>6} {'F1':>6} {'n':>5}"]
    lines += [f"{r['label']:<{width}} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['support']:5d}"
              for r in per_label_table(gold, pred, labels)]
    return "\n".join(lines)
