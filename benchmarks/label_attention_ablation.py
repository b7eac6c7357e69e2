"""The paper's Table 1 ablation on our encoders: dev and 5-fold CV over train+dev, mean ± std over seeds.

    python benchmarks/label_attention_ablation.py --recipe label-attention-frozen --seeds 0,1,2

Single models (ensemble_size 1), as in the paper's table, with the model's defaults or --recipe / --options.
Each run is scored with its configured thresholds and with the other mode (global; per-label when global is
configured), both chosen on the same held-out memes, so the two modes compare on identical models. Writes
benchmarks/results/la_ablation.{json,md} (--out changes the stem).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import RESULTS, add_model_options, builder, cross_validate_modes, model_config

from memecat.evaluation import summarise
from memecat.metrics import task_scores
from memecat.models.ensemble import EnsembleModel
from memecat.models.thresholds import choose_thresholds
from memecat.tasks import get_task, load_split

NAMES = {"none": "avg-pooling only", "image": "+ visual attention", "text": "+ textual attention",
         "both": "full attention"}
PAPER = {"none": (0.1333, 0.0812), "image": (0.4140, 0.1155), "text": (0.5256, 0.0814), "both": (0.5680, 0.2040)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default="both,text,image,none")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "la_ablation")
    args = parser.parse_args()
    _, config = model_config("label-attention", args.recipe, args.options)
    task = get_task("semeval-t6")
    train, dev = load_split(task, "train"), load_split(task, "dev")
    results, other = {}, None
    for variant in args.variants.split(","):
        build = builder("label-attention", task, {**config, "attention": variant, "ensemble_size": 1}, args.cache)
        configured = build(0).config.threshold_mode
        other = "per-label" if configured == "global" else "global"  # the mode scored beside the configured one
        dev_runs, cv_runs = [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            started = time.perf_counter()
            dev_runs.append(score_modes(build(seed).fit(train), dev, other))
            result = cross_validate_modes(task, build, train + dev, args.folds, seed, modes=(other,))
            folds = [{**run, **{f"{k}_other": v for k, v in again.items()}}
                     for run, again in zip(result["runs"], result["by_threshold_mode"][other])]
            cv_runs.append(summarise(folds)["mean"])
            print(f"{variant} seed {seed}: dev {dev_runs[-1]}  cv {cv_runs[-1]}  "
                  f"({time.perf_counter() - started:.0f}s)", flush=True)
        results[variant] = {"dev": summarise(dev_runs), "cv": summarise(cv_runs)}
        write_tables(results, args.out, other)  # after every variant, so a long run leaves partial tables


def score_modes(model: EnsembleModel, memes: list, other: str) -> dict[str, float]:
    """Scores with the configured thresholds, and with mode `other`'s chosen on the same held-out memes."""
    task = model.task
    gold, proba = task.encode(memes), model.predict_proba(memes)
    scores = task_scores(task, gold, model.decide(proba))
    thresholds = choose_thresholds(*model.held_out, other)
    scores.update({f"{k}_other": v for k, v in task_scores(task, gold, (proba >= thresholds).astype(int)).items()})
    return scores


def write_tables(results: dict, out: Path, other: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"other_threshold_mode": other, "variants": results}, indent=2))
    header = ("| variant | dev micro-F1 | dev macro-F1 | CV micro-F1 | CV macro-F1 "
              f"| CV micro / macro, {other} thresholds | paper (val) micro / macro |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for variant, r in results.items():
        cell = lambda part, k, r=r: f"{r[part]['mean'][k]:.4f} ± {r[part]['std'][k]:.4f}"
        lines.append(f"| {NAMES[variant]} | {cell('dev', 'micro_f1')} | {cell('dev', 'macro_f1')} | "
                     f"{cell('cv', 'micro_f1')} | {cell('cv', 'macro_f1')} | "
                     f"{cell('cv', 'micro_f1_other')} / {cell('cv', 'macro_f1_other')} | "
                     f"{PAPER[variant][0]:.4f} / {PAPER[variant][1]:.4f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
