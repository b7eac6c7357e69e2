"""Training recipes for the neural models, compared by 5-fold CV over SemEval train+dev.

    python benchmarks/recipes.py --name default --config '{}'
    python benchmarks/recipes.py --name finetune6 --config '{"finetune_layers": 6, "max_epochs": 10, "ensemble_size": 1}' --max-folds 3
    python benchmarks/recipes.py --model simre --name simre-default --max-folds 2
    python benchmarks/recipes.py --model simre --name s9-simre-ens5 --config '{"ensemble_size": 5}' --only-folds 2

Each fold fits the configured model on the other folds; thresholds come from the model's own held-out
dev memes, never from the scored fold. Every run is scored with global, per-label and joint thresholds
(same models), so the threshold modes compare on identical predictions. The mean per-label ROC AUC on the
scored folds says how well the scores rank memes, whatever the thresholds. Appends one JSON line per run to
benchmarks/results/recipes.jsonl; every member's scores on its held-out dev memes and on the scored
fold go to runs/recipes/NAME_seedS.npz, so decision rules can be compared on the same models afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from memecat.evaluation import fold_splits
from memecat.metrics import mean_label_auc, task_scores
from memecat.models.registry import model_class
from memecat.models.thresholds import choose_thresholds
from memecat.tasks import get_task, load_split

RESULTS = Path(__file__).resolve().parent / "results" / "recipes.jsonl"
PREDICTIONS = Path(__file__).resolve().parents[1] / "runs" / "recipes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="label-attention", choices=["label-attention", "simre"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--config", default="{}", help="the model's config overrides as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=None, help="stop after this many folds")
    parser.add_argument("--only-folds", default=None,
                        help="comma-separated folds to run, e.g. to split one run across processes (the record lists them)")
    args = parser.parse_args()
    task = get_task("semeval-t6")
    pool = load_split(task, "train") + load_split(task, "dev")
    y = task.encode(pool)
    overrides = json.loads(args.config)
    only = None if args.only_folds is None else [int(k) for k in args.only_folds.split(",")]
    cls = model_class(args.model)
    scores: dict[str, list[dict]] = {"global": [], "per-label": [], "joint": []}
    aucs: list[float] = []
    started = time.perf_counter()
    saved: dict[str, np.ndarray] = {}
    for k, (train_idx, test_idx) in enumerate(fold_splits(task, pool, args.folds, args.seed)):
        if args.max_folds is not None and k >= args.max_folds:
            break
        if only is not None and k not in only:
            continue
        model = cls(task, cls.config_class(**{**overrides, "seed": args.seed * 100 + k}))
        model.fit([pool[i] for i in train_idx], None)
        proba = model.predict_proba([pool[i] for i in test_idx])
        tensors = model.inputs([pool[i] for i in test_idx], progress=False)
        saved[f"fold{k}_test_idx"] = test_idx
        saved[f"fold{k}_members"] = np.stack([model._member_proba(net, tensors) for net in model.members])
        for m, (held_y, held_p) in enumerate(model.held_out_members):
            saved[f"fold{k}_member{m}_dev_y"], saved[f"fold{k}_member{m}_dev_proba"] = held_y, held_p
        for mode, runs in scores.items():
            decided = (proba >= choose_thresholds(*model.held_out, mode)).astype(int)
            runs.append(task_scores(task, y[test_idx], decided))
        aucs.append(mean_label_auc(y[test_idx], proba))
        print(f"{args.name} fold {k}: " + ", ".join(
            f"{mode} {s[-1]['micro_f1']:.4f}/{s[-1]['macro_f1']:.4f}" for mode, s in scores.items())
            + f", AUC {aucs[-1]:.4f}", flush=True)
    # The overrides name the recipe; the resolved config says what it ran, whatever the defaults become.
    record = {"model": args.model, "name": args.name, "config": overrides,
              "resolved_config": cls.config_class(**overrides).model_dump(mode="json", exclude={"seed"}),
              "seed": args.seed, "folds": len(scores["global"]),
              "of_folds": args.folds, "seconds": round(time.perf_counter() - started), **summarise(scores),
              "mean_auc": float(np.mean(aucs)), **({"only_folds": only} if only is not None else {})}
    suffix = "" if only is None else "_folds" + "-".join(map(str, only))
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(PREDICTIONS / f"{args.name}_seed{args.seed}{suffix}.npz", y=y, **saved)
    append_record(record)


def summarise(scores: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per threshold mode: mean and std over folds of micro- and macro-F1."""
    return {mode: {f"{stat}_{metric}": float(fn([run[metric] for run in runs]))
                   for metric in ("micro_f1", "macro_f1") for stat, fn in (("mean", np.mean), ("std", np.std))}
            for mode, runs in scores.items()}


def append_record(record: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
