"""Validation and K-fold CV figures of several models on one task, mean ± std over seeds.

    python benchmarks/compare_models.py --task harm-c-2 --models majority,linear-probe --seeds 0

Validation: fit on the training split only, score the validation split. CV: K folds over train+val.
Writes benchmarks/results/compare_<task>.{json,md} (a model's row is replaced when run again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from memecat.evaluation import cross_validate, summarise
from memecat.metrics import task_scores
from memecat.models.registry import model_class
from memecat.tasks import VALIDATION_SPLIT, get_task, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--models", required=True, help="comma-separated model names")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5, help="0: validation figures only")
    parser.add_argument("--config", default="{}", help="JSON of config overrides for every model")
    args = parser.parse_args()
    task = get_task(args.task)
    val_split = VALIDATION_SPLIT[task.name]
    train, val = load_split(task, "train"), load_split(task, val_split)
    out = Path(f"benchmarks/results/compare_{task.name}")
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    for name in args.models.split(","):
        cls = model_class(name)
        overrides = json.loads(args.config)

        def build(seed: int, cls=cls, overrides=overrides):
            return cls(task, cls.config_class(**{**overrides, "seed": seed}))

        val_runs, cv_runs, seconds = [], [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            started = time.perf_counter()
            model = build(seed).fit(train, None)
            seconds.append(time.perf_counter() - started)
            val_runs.append(task_scores(task, task.encode(val), model.decide(model.predict_proba(val))))
            if args.folds:
                cv_runs.append(cross_validate(task, build, train + val, folds=args.folds, seed=seed)["mean"])
            print(f"{name} seed {seed}: {val_split} {val_runs[-1]}  cv {cv_runs[-1] if cv_runs else '-'}", flush=True)
        results[name] = {"val": summarise(val_runs), "fit_seconds": seconds}
        if cv_runs:
            results[name]["cv"] = summarise(cv_runs)
        write_table(results, out, val_split)


def write_table(results: dict, out: Path, val_split: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    metrics = list(next(iter(results.values()))["val"]["mean"])
    header = "| model | " + " | ".join(f"{val_split} {m}" for m in metrics) + " | " + \
        " | ".join(f"CV {m}" for m in metrics) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(metrics))]
    for name, r in results.items():
        cells = [f"{r[part]['mean'][m]:.4f} ± {r[part]['std'][m]:.4f}" if part in r else "–"
                 for part in ("val", "cv") for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
