"""SimRe's paper experiments: Table 1, Table 2 and Figures 3/4, and the options measured beside them.

table1    SimRe, SimRe without simulation and the label-attention model (one model, the label-attention-frozen
          recipe), K-fold CV over train+dev, mean +- std over seeds, paired t-tests (scipy.stats.ttest_rel) over
          the matching (seed, fold) runs
table2    the temperature tau in {0.05, 0.1, 0.2, 0.5}
ensemble  one SimRe network (the default) or 3 members with their margins averaged
offsets   the argmax of the level scores (the default) or class offsets chosen for macro-F1 (harm tasks)
finetune  the frozen text encoder (the default) or its last 3 layers trained with SimRe
figures   Figure 3: heat maps of T+.I+ and T-.I- on one batch of held-out (meme, category) rows; Figure 4: the
          relative weight exp(s/tau) of each negative, normalised within the row's negatives and sorted by
          similarity, averaged over rows; with and without simulation

Every (row, seed) CV run appends its per-fold scores to benchmarks/results/simre_runs.jsonl with its resolved
config; a run already there (under the same defaults) is not repeated, so an interrupted study resumes and rows
can be split across processes (--only):

    OMP_NUM_THREADS=1 python benchmarks/simre_experiments.py --part table1 --seeds 0,1,2,3,4 --only "SimRe (default)" &
    OMP_NUM_THREADS=1 python benchmarks/simre_experiments.py --part table1 --seeds 0,1,2,3,4 --only "w/o simulation"
    python benchmarks/simre_experiments.py --part table1 --seeds 0,1,2,3,4      # the rest, then the table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from common import (
    RESULTS,
    add_model_options,
    builder,
    cross_validate_modes,
    merged,
    model_config,
    resolved_config,
)
from scipy.stats import ttest_rel

from memecat.models.simre import SimReConfig, SimReModel, prompt_columns
from memecat.recipes import load_recipe
from memecat.tasks import VALIDATION_SPLIT, Task, get_task, load_split
from memecat.training.simre import prompt_polarity

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
RUNS = RESULTS / "simre_runs.jsonl"
TEMPERATURES = (0.05, 0.1, 0.2, 0.5)
# Label-attention rows: one model with the frozen-encoder recipe (a fine-tuned fit costs ~15x more).
LA_ONE_MODEL = ("label-attention", {**load_recipe("label-attention-frozen").config, "ensemble_size": 1})
# part -> row name -> (model type, config options); a row named "(default)" is its table's t-test baseline.
PARTS = {
    "table1": {"SimRe (default)": ("simre", {}), "w/o simulation": ("simre", {"simulation": False}),
               "label-attention (one model)": LA_ONE_MODEL},
    "table2": {f"tau = {t}" + (" (default)" if t == SimReConfig().temperature else ""):
               ("simre", {} if t == SimReConfig().temperature else {"temperature": t}) for t in TEMPERATURES},
    "ensemble": {"one network (default)": ("simre", {}), "3-member ensemble": ("simre", {"ensemble_size": 3})},
    "offsets": {"argmax (default)": ("simre", {}), "class offsets for macro-F1": ("simre", {"class_offsets": True})},
    "finetune": {"frozen encoder (default)": ("simre", {}),
                 "last 3 MiniLM layers fine-tuned": ("simre", {"finetune_layers": 3})},
}

# Runs recorded in the flat config format of memecat 0.1, one line per fold, read as the current format: the
# training options move under "train", and a removed option counts only with the one value still implemented.
_TRAIN_KEYS = ("lr", "text_lr", "weight_decay", "batch_size", "max_epochs", "patience", "early_stopping", "devices",
               "num_nodes", "strategy")
_REMOVED = {"mix": "pixel", "levels": "softmax", "text_pooling": "all"}


def upgraded(config: dict) -> dict | None:
    """A flat config as the current one; None if it used a removed option's other value (mixed grids, ordinal
    levels, prompt pooling), which no current row can repeat."""
    config = dict(config)
    for key, kept in _REMOVED.items():
        if config.pop(key, kept) != kept:
            return None
    train = {key: config.pop(key) for key in _TRAIN_KEYS if key in config}
    if "step_size" in config:
        train["lr_step_epochs"], train["lr_gamma"] = config.pop("step_size"), config.pop("gamma", 0.5)
    return merged(config, {"train": train}) if train else config


def agrees(recorded: dict, current: dict) -> bool:
    """Every option the record names has the current value (an option added since was not compared: its
    default is the behaviour from before it existed)."""
    return all(k in current and (agrees(v, current[k]) if isinstance(v, dict) and isinstance(current[k], dict)
                                 else current[k] == v) for k, v in recorded.items())


def run_key(task: str, model: str, config: dict, seed: int, folds: int) -> str:
    return json.dumps([task, model, config, seed, folds], sort_keys=True)


def recorded(task: Task, model: str, config: dict) -> dict[str, list[dict]]:
    """Per-fold scores of the recorded runs by key, leaving out runs made under other defaults."""
    if not RUNS.exists():
        return {}
    current = resolved_config(model, task, config)
    by_fold: dict[str, dict[int, dict]] = {}
    for line in RUNS.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        config_then = record.get("config", current)
        key = json.loads(record["key"])
        if len(key) == 6:  # one fold, flat format
            task_name, model_name, options, seed, fold, folds = key
            options, config_then = upgraded(options), upgraded(config_then)
            if options is None or config_then is None:
                continue
            runs = {fold: record["scores"]}
        else:
            task_name, model_name, options, seed, folds = key
            runs = dict(enumerate(record["folds"]))
        if agrees(config_then, current):
            by_fold.setdefault(run_key(task_name, model_name, options, seed, folds), {}).update(runs)
    return {key: [runs[k] for k in sorted(runs)] for key, runs in by_fold.items()
            if sorted(runs) == list(range(json.loads(key)[-1]))}


def cv_runs(task: Task, memes, model: str, config: dict, folds: int, seeds: list[int], cache: Path | None,
            report_only: bool = False) -> list[dict] | None:
    """Scores of every (seed, fold) run, in a fixed order so two rows pair up run by run; None when report_only
    and a run is missing from the record."""
    runs = []
    for seed in seeds:
        key = run_key(task.name, model, config, seed, folds)
        done = recorded(task, model, config)  # read afresh: other processes may have added runs since
        if key not in done:
            if report_only:
                return None
            started = time.perf_counter()
            result = cross_validate_modes(task, builder(model, task, config, cache), memes, folds, seed)
            record = {"key": key, "config": resolved_config(model, task, config), "folds": result["runs"],
                      "seconds": round(time.perf_counter() - started, 1)}
            if "by_threshold_mode" in result:  # every threshold mode on the same models, for the record
                record["by_threshold_mode"] = result["by_threshold_mode"]
            with RUNS.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
            done[key] = result["runs"]
        runs += done[key]
    return runs


def table(rows: dict[str, list[dict]], folds: int, baseline: str) -> str:
    """Markdown: per metric the mean over all (seed, fold) runs, +- the std over seeds of the seeds' CV means
    (and over all runs); p-values of a paired t-test over the (seed, fold) runs against `baseline`."""
    metrics = [m for m in next(iter(rows.values()))[0] if all(m in r for runs in rows.values() for r in runs)]
    p_columns = [f"p {m} (vs {baseline})" for m in metrics]
    lines = ["| config | " + " | ".join(metrics + p_columns) + " |", "|" + "---|" * (1 + len(metrics + p_columns))]
    for name, runs in rows.items():
        cells = []
        for m in metrics:
            values = np.array([r[m] for r in runs])
            seed_means = values.reshape(-1, folds).mean(axis=1)
            cells.append(f"{values.mean():.4f} ± {values.std():.4f} (folds)" if len(seed_means) == 1 else
                         f"{values.mean():.4f} ± {seed_means.std():.4f} (runs ± {values.std():.4f})")
        p = [ttest_rel([r[m] for r in runs], [r[m] for r in rows[baseline]]).pvalue if name != baseline else np.nan
             for m in metrics]
        cells += ["–" if np.isnan(v) else f"{v:.3g}" for v in p]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def batch_similarities(model: SimReModel, memes, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """s+ = T+.I+ and s- = T-.I- [R, R] over `rows` random (meme, category) rows of held-out memes."""
    net = model.members[0].eval()
    tensors = model.inputs(memes, progress=False)
    labels = torch.from_numpy(model.task.encode(memes)[:, prompt_columns(model.task)])
    n, c = labels.shape
    categories = torch.arange(c).expand(n, -1)
    consistent, inconsistent = prompt_polarity(labels)
    pick = torch.randperm(n * c, generator=torch.Generator().manual_seed(0))[:rows]
    with torch.inference_mode():
        (text_pos, image_pos), (text_neg, image_neg) = (
            (t.flatten(0, 1)[pick] for t in pair) for pair in net(tensors, categories, consistent, inconsistent))
    return text_pos @ image_pos.T, text_neg @ image_neg.T


def negative_weights(s_pos: torch.Tensor, s_neg: torch.Tensor, temperature: float) -> np.ndarray:
    """Per row: exp(s/tau) of its negatives (s+_ij, j != i, and every s-_ik) normalised, sorted, averaged."""
    r = len(s_pos)
    off_diagonal = ~torch.eye(r, dtype=torch.bool)
    negatives = torch.cat([s_pos[off_diagonal].view(r, r - 1), s_neg], dim=1)
    weights = (negatives / temperature).softmax(dim=1)
    return weights.sort(dim=1, descending=True).values.mean(0).numpy()


def figures(task: Task, train, held_out, config: dict, rows: int, cache: Path | None) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    curves = {}
    for name, simulation in (("SimRe", True), ("w/o simulation", False)):
        model = builder("simre", task, {**config, "simulation": simulation}, cache)(0).fit(train)
        s_pos, s_neg = batch_similarities(model, held_out, rows)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, matrix, title in zip(axes, (s_pos, s_neg), ("T+ · I+", "T- · I-")):
            im = ax.imshow(matrix.numpy(), cmap="viridis", vmin=-1, vmax=1)
            ax.set_title(f"{title} ({name})")
            ax.set_xlabel("image row")
            ax.set_ylabel("text row")
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        fig.savefig(FIGURES / f"simre_fig3_similarity_{'sim' if simulation else 'nosim'}.png", dpi=120)
        plt.close(fig)
        curves[name] = negative_weights(s_pos, s_neg, model.temperature)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("negative, sorted by similarity")
    ax.set_ylabel("relative weight exp(s/τ) / Σ")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "simre_fig4_negative_weights.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="semeval-t6")
    parser.add_argument("--part", default="table1,table2,figures", help=f"comma-separated: {','.join(PARTS)},figures")
    parser.add_argument("--only", default=None, help="run this row of the tables only (no table printed)")
    parser.add_argument("--report", action="store_true", help="fit nothing: print the tables of recorded runs")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    add_model_options(parser)  # --recipe / --options: for every SimRe run
    parser.add_argument("--rows", type=int, default=48, help="(meme, category) rows in the figures' batch")
    args = parser.parse_args()
    task = get_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")]
    _, simre_config = model_config("simre", args.recipe, args.options)
    parts = args.part.split(",")
    memes = load_split(task, "train") + load_split(task, VALIDATION_SPLIT[task.name])
    for part in [p for p in parts if p in PARTS]:
        rows = {}
        for name, (model, row_config) in PARTS[part].items():
            if args.only in (None, name):
                config = merged(simre_config, row_config) if model == "simre" else row_config
                runs = cv_runs(task, memes, model, config, args.folds, seeds, args.cache, report_only=args.report)
                if runs is None:
                    print(f"{part}: {name!r} has runs missing; left out")
                else:
                    rows[name] = runs
        if args.only is None and rows:
            baseline = next((n for n in rows if "default" in n), next(iter(rows)))
            print(f"\n{part} ({args.task}, {args.folds}-fold CV, seeds {args.seeds})\n"
                  + table(rows, args.folds, baseline))
    if "figures" in parts and not args.report:
        figures(task, load_split(task, "train"), load_split(task, VALIDATION_SPLIT[task.name]), simre_config,
                args.rows, args.cache)
        print(f"\nfigures written to {FIGURES}")


if __name__ == "__main__":
    main()
