"""Scoring predictions against gold, and K-fold cross-validation over train+dev."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from memecat.data.meme import Meme
from memecat.data.readers import read_dataset
from memecat.errors import DataError
from memecat.metrics import mean_label_auc, task_scores
from memecat.models.base import MemeModel
from memecat.predict.outputs import read_predictions
from memecat.tasks import Task


def score_files(task: Task, pred_path: str | Path, gold_path: str | Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """Scores of a predictions file against a gold dataset file; also the aligned 0/1 matrices."""
    gold_memes = [m for m in read_dataset(gold_path) if task.keeps(m)]
    predictions = read_predictions(pred_path)
    missing = [m.id for m in gold_memes if m.id not in predictions]
    if missing:
        raise DataError(pred_path, f"{len(missing)} gold memes have no prediction (first: {missing[0]})")
    gold = task.encode(gold_memes, gold_path)
    as_memes = [Meme(id=m.id, text="", image=None, labels=tuple(predictions[m.id])) for m in gold_memes]
    pred = np.zeros_like(gold)
    index = {label: j for j, label in enumerate(task.labels)}
    for row, meme in enumerate(as_memes):
        for label in task.task_labels(meme.labels, pred_path, meme.id):
            pred[row, index[label]] = 1
    return task_scores(task, gold, pred), gold, pred


def fold_splits(task: Task, memes: list[Meme], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    idx = np.arange(len(memes))
    if task.multi_label:
        return list(KFold(folds, shuffle=True, random_state=seed).split(idx))
    y = task.encode(memes).argmax(axis=1)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(idx, y))


def cross_validate(task: Task, build: Callable[[int], MemeModel], memes: list[Meme], folds: int = 5,
                   seed: int = 0, extra: list[Meme] | None = None) -> dict:
    """Train on K-1 folds (plus every `extra` meme), score the held-out fold. Returns per-fold scores ("runs"),
    their mean and std (multi-label tasks also get `label_auc`, the ranking quality no threshold affects), and
    every meme's out-of-fold scores and decisions ("oof_proba", "oof_pred", rows in the order of `memes`)."""
    per_fold = []
    y = task.encode(memes)
    oof_proba = np.zeros_like(y, dtype=np.float32)
    oof_pred = np.zeros_like(y, dtype=np.int64)
    for k, (train_idx, test_idx) in enumerate(fold_splits(task, memes, folds, seed)):
        model = build(seed * 100 + k)
        model.fit([memes[i] for i in train_idx] + (extra or []))
        held_out = [memes[i] for i in test_idx]
        oof_proba[test_idx] = model.predict_proba(held_out)
        oof_pred[test_idx] = model.decide(oof_proba[test_idx])
        per_fold.append(task_scores(task, y[test_idx], oof_pred[test_idx]))
        if task.multi_label:
            per_fold[-1]["label_auc"] = mean_label_auc(y[test_idx], oof_proba[test_idx])
    return {**summarise(per_fold), "oof_proba": oof_proba, "oof_pred": oof_pred}


def summarise(runs: list[dict]) -> dict:
    keys = runs[0].keys()
    return {
        "runs": runs,
        "mean": {k: float(np.mean([r[k] for r in runs])) for k in keys},
        "std": {k: float(np.std([r[k] for r in runs])) for k in keys},
    }
