"""Validation and K-fold CV figures of models on one task, mean ± std over seeds.

    python benchmarks/compare_models.py --task harm-c-2 --models majority,linear-probe --seeds 0,1,2
    python benchmarks/compare_models.py --task harm-c-2 --recipe label-attention-frozen --folds 0

Validation: fit on the training split only, score the validation split. CV: K folds over train+validation.
--recipe and --options apply to every model named; a row is named after the model (after the recipe when one is
given; --name overrides). Writes benchmarks/results/compare_<task>.{json,md}; a row run again is replaced.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import RESULTS, add_model_options, builder, model_config

from memecat.evaluation import cross_validate, summarise
from memecat.metrics import task_scores
from memecat.tasks import VALIDATION_SPLIT, get_task, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--models", default=None, help="comma-separated model names (default: the recipe's model)")
    add_model_options(parser)
    parser.add_argument("--name", default=None, help="row name (one model only)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5, help="0: validation figures only")
    args = parser.parse_args()
    task = get_task(args.task)
    val_split = VALIDATION_SPLIT[task.name]
    train, val = load_split(task, "train"), load_split(task, val_split)
    out = RESULTS / f"compare_{task.name}"
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    for model_name in args.models.split(",") if args.models else [None]:
        name, config = model_config(model_name, args.recipe, args.options)
        row = args.name or args.recipe or name
        build = builder(name, task, config, args.cache)
        val_runs, cv_runs, seconds = [], [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            started = time.perf_counter()
            model = build(seed).fit(train)
            seconds.append(time.perf_counter() - started)
            val_runs.append(task_scores(task, task.encode(val), model.decide(model.predict_proba(val))))
            if args.folds:
                cv_runs.append(cross_validate(task, build, train + val, folds=args.folds, seed=seed)["mean"])
            print(f"{row} seed {seed}: {val_split} {val_runs[-1]}  cv {cv_runs[-1] if cv_runs else '-'}", flush=True)
        results[row] = {"val": summarise(val_runs), "fit_seconds": seconds}
        if cv_runs:
            results[row]["cv"] = summarise(cv_runs)
        write_table(results, out, val_split)


def write_table(results: dict, out: Path, val_split: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    metrics = list(next(iter(results.values()))["val"]["mean"])
    header = "| model | " + " | ".join(f"{val_split} {m}" for m in metrics) + " | " + \
        " | ".join(f"CV {m}" for m in metrics) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(metrics))]
    for name, r in results.items():
        cells = [f"{r[part]['mean'][m]:.4f} ± {r[part]['std'][m]:.4f}" if part in r and m in r[part]["mean"] else "–"
                 for part in ("val", "cv") for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
