"""SimRe as the authors' APCL code trains it: one model per category, against the one-model default.

    python benchmarks/simre_per_category.py --fold 0      # one fold of seed 0's 5-fold CV (22 fits)
    python benchmarks/simre_per_category.py --fold 1      # ... and so on to --fold 4 (folds can run at once)
    python benchmarks/simre_per_category.py --report --folds-done 0,1,2,3,4

Each category's model is SimRe on a one-label view of SemEval (the category's be/not prompts only, every
meme a row), with the default recipe and the same seed, so every model holds out the same 96 memes as the
one-model run of `recipes.py --model simre` on that fold. Their margins are put side by side into one
[memes x 22] score matrix and scored like `recipes.py`: global, per-label and joint thresholds from the 96
held-out memes, and label AUC on the scored fold. Fold scores go to runs/recipes/NAME_seedS_foldK.npz; the
report appends one line to benchmarks/results/recipes.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from recipes import PREDICTIONS, append_record, summarise  # this folder is on the path when run as a script

from memecat.evaluation import fold_splits
from memecat.metrics import mean_label_auc, task_scores
from memecat.models.simre import SimReConfig, SimReModel
from memecat.models.thresholds import choose_thresholds
from memecat.tasks import get_task, load_split

MODES = ("global", "per-label", "joint")


def one_label_task(task, label: str):
    """The task seen through one category: its prompts only, every other label dropped."""
    return dataclasses.replace(task, labels=(label,), label_map={other: None for other in task.labels if other != label})


def run_fold(args, task, pool, k: int) -> None:
    train_idx, test_idx = list(fold_splits(task, pool, 5, args.seed))[k]
    train, test = [pool[i] for i in train_idx], [pool[i] for i in test_idx]
    dev_proba, test_proba, dev_y, seconds = [], [], [], []
    for c, label in enumerate(task.labels):
        started = time.perf_counter()
        sub = one_label_task(task, label)
        model = SimReModel(sub, SimReConfig(**{**json.loads(args.config), "seed": args.seed * 100 + k}))
        model.fit(train, None)
        held_y, held_p = model.held_out
        dev_y.append(held_y[:, 0])
        dev_proba.append(held_p[:, 0])
        test_proba.append(model.predict_proba(test)[:, 0])
        seconds.append(time.perf_counter() - started)
        print(f"fold {k} category {c} ({label}): {seconds[-1]:.0f} s", flush=True)
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(PREDICTIONS / f"{args.name}_seed{args.seed}_fold{k}.npz", test_idx=test_idx,
                        dev_y=np.stack(dev_y, 1), dev_proba=np.stack(dev_proba, 1),
                        test_proba=np.stack(test_proba, 1), seconds=np.array(seconds))


def report(args, task, pool, folds: list[int]) -> None:
    y = task.encode(pool)
    scores: dict[str, list[dict]] = {mode: [] for mode in MODES}
    aucs, seconds = [], 0.0
    for k in folds:
        saved = np.load(PREDICTIONS / f"{args.name}_seed{args.seed}_fold{k}.npz")
        gold = y[saved["test_idx"]]
        for mode in MODES:
            thresholds = choose_thresholds(saved["dev_y"], saved["dev_proba"], mode)
            scores[mode].append(task_scores(task, gold, (saved["test_proba"] >= thresholds).astype(int)))
        aucs.append(mean_label_auc(gold, saved["test_proba"]))
        seconds += float(saved["seconds"].sum())
        print(f"fold {k}: " + ", ".join(f"{m} {s[-1]['micro_f1']:.4f}/{s[-1]['macro_f1']:.4f}" for m, s in scores.items())
              + f", AUC {aucs[-1]:.4f}")
    append_record({"model": "simre", "name": args.name, "config": {**json.loads(args.config), "per_category": True},
                   "seed": args.seed, "folds": len(folds), "of_folds": 5, "seconds": round(seconds),
                   **summarise(scores), "mean_auc": float(np.mean(aucs))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="simre-per-category")
    parser.add_argument("--config", default="{}", help="SimRe config overrides as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fold", type=int, help="run this fold (0-4)")
    parser.add_argument("--report", action="store_true", help="score the folds already run")
    parser.add_argument("--folds-done", default="0,1,2,3,4")
    args = parser.parse_args()
    task = get_task("semeval-t6")
    pool = load_split(task, "train") + load_split(task, "dev")
    if args.report:
        report(args, task, pool, [int(f) for f in args.folds_done.split(",")])
    else:
        run_fold(args, task, pool, args.fold)


if __name__ == "__main__":
    main()
