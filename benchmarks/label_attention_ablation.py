"""The paper's Table 1 ablation on our encoders: dev and 5-fold CV over train+dev, mean ± std over seeds.

    python benchmarks/label_attention_ablation.py --seeds 0,1,2 [--variants none,image,text,both]

Single models (ensemble_size=1), as in the paper's table, trained with the default recipe unless --config
says otherwise. Each run is scored with its configured thresholds (per-label by default) and with the other
mode (global; per-label when global is configured), both chosen on the same held-out memes, so the two modes
compare on identical models. Writes benchmarks/results/la_ablation.{json,md} (--out changes the stem).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from memecat.evaluation import fold_splits, summarise
from memecat.metrics import task_scores
from memecat.models.label_attention import LabelAttentionConfig, LabelAttentionEnsemble
from memecat.models.thresholds import choose_thresholds
from memecat.tasks import get_task, load_split

NAMES = {"none": "avg-pooling only", "image": "+ visual attention", "text": "+ textual attention",
         "both": "full attention"}
PAPER = {"none": (0.1333, 0.0812), "image": (0.4140, 0.1155), "text": (0.5256, 0.0814), "both": (0.5680, 0.2040)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default="both,text,image,none")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", default="{}", help="LabelAttentionConfig overrides as JSON (the recipe)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/la_ablation"))
    args = parser.parse_args()
    overrides = json.loads(args.config)
    other = other_mode(LabelAttentionConfig(**overrides))  # the threshold mode scored beside the configured one
    task = get_task("semeval-t6")
    train, dev = load_split(task, "train"), load_split(task, "dev")
    results = {}
    for variant in args.variants.split(","):
        dev_runs, cv_runs = [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            build = lambda s, v=variant: LabelAttentionEnsemble(
                task, LabelAttentionConfig(**{**overrides, "attention": v, "ensemble_size": 1, "seed": s}))
            started = time.perf_counter()
            dev_runs.append(score_modes(build(seed).fit(train, None), dev, other))
            pool = train + dev
            folds = [score_modes(build(seed * 100 + k).fit([pool[i] for i in tr], None), [pool[i] for i in te], other)
                     for k, (tr, te) in enumerate(fold_splits(task, pool, args.folds, seed))]
            cv_runs.append(summarise(folds)["mean"])
            print(f"{variant} seed {seed}: dev {dev_runs[-1]}  cv {cv_runs[-1]}  "
                  f"({time.perf_counter() - started:.0f}s)", flush=True)
        results[variant] = {"dev": summarise(dev_runs), "cv": summarise(cv_runs)}
        # after every variant, so a long run leaves partial tables
        write_tables(results, args.out, other)


def other_mode(config: LabelAttentionConfig) -> str:
    return "per-label" if config.threshold_mode == "global" else "global"


def score_modes(model: LabelAttentionEnsemble, memes: list, other: str) -> dict[str, float]:
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
