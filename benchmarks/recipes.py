"""Neural recipes (the label-attention ensemble, SimRe) compared by 5-fold CV over SemEval train+dev.

    python benchmarks/recipes.py --name default --seed 0                  # the 5-member label-attention ensemble
    python benchmarks/recipes.py --name frozen --recipe label-attention-frozen --seed 0
    python benchmarks/recipes.py --name one-model --options '{"ensemble_size": 1}'
    python benchmarks/recipes.py --model simre --name simre-default

Each fold fits the model on the other folds; its thresholds come from the memes it held out, never from the
scored fold. Every run is scored with global, per-label and joint thresholds (the same models), and the mean
per-label ROC AUC on the scored folds says how well the scores rank memes, whatever the thresholds. Appends one
JSON line per run to benchmarks/results/recipes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import (
    RESULTS,
    add_model_options,
    builder,
    cross_validate_modes,
    mean_std,
    model_config,
    resolved_config,
)

from memecat.tasks import get_task, load_split

RECORDS = RESULTS / "recipes.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, choices=["label-attention", "simre"],
                        help="default: the recipe's model, else label-attention")
    parser.add_argument("--name", required=True, help="the record's name")
    add_model_options(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    model, config = model_config(args.model or (None if args.recipe else "label-attention"), args.recipe,
                                 args.options)
    task = get_task("semeval-t6")
    pool = load_split(task, "train") + load_split(task, "dev")
    started = time.perf_counter()
    result = cross_validate_modes(task, builder(model, task, config, args.cache), pool, args.folds, args.seed)
    for k, run in enumerate(result["runs"]):
        print(f"{args.name} fold {k}: " + ", ".join(
            f"{mode} {runs[k]['micro_f1']:.4f}/{runs[k]['macro_f1']:.4f}"
            for mode, runs in result["by_threshold_mode"].items()) + f", AUC {run['label_auc']:.4f}", flush=True)
    # The options name the recipe; the resolved config says what it ran, whatever the defaults become.
    record = {"model": model, "name": args.name, "recipe": args.recipe, "config": config,
              "resolved_config": resolved_config(model, task, config), "seed": args.seed, "folds": args.folds,
              "of_folds": args.folds, "seconds": round(time.perf_counter() - started),
              **{mode: mean_std(runs) for mode, runs in result["by_threshold_mode"].items()},
              "mean_auc": float(np.mean([run["label_auc"] for run in result["runs"]]))}
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
