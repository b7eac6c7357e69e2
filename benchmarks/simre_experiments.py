"""SimRe's paper experiments on this machine: Table 1, Table 2 and Figures 3/4.

Table 1: SimRe, SimRe without simulation and the label-attention model (one model, the default recipe),
         K-fold CV over train+dev, mean +- std over seeds, paired t-tests (scipy.stats.ttest_rel) over the
         matching (seed, fold) runs.
Table 2: the temperature tau in {0.05, 0.1, 0.2, 0.5}.
Mixing: recreated images from mixed pixels (the default) or from mixed grid features.
Levels: harm-c-3 in the label-attention model, softmax over levels or ordinal steps.
Ensemble: one SimRe network (the default) or 3 members with their margins averaged.
Offsets (harm tasks): the argmax of the level scores (the default) or class offsets chosen for macro-F1.
Fine-tuning: the frozen text encoder (the default) or its last 3 layers trained with SimRe.
Figure 3: heat maps of T+.I+ and T-.I- on one batch of held-out (meme, category) rows.
Figure 4: relative weight exp(s/tau) of each negative, normalised within the row's negatives and sorted by
          similarity, averaged over rows; with and without simulation.

Every (row, seed, fold) run appends its scores to benchmarks/results/simre_runs.jsonl; a run already there
is not repeated, so an interrupted study resumes and rows can be split across processes (--only):

    OMP_NUM_THREADS=1 python benchmarks/simre_experiments.py --part table1 --seeds 0,1,2,3,4 --only SimRe &
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
from scipy.stats import ttest_rel

from memecat.config_io import load_config
from memecat.evaluation import fold_splits
from memecat.metrics import task_scores
from memecat.models.label_attention import LabelAttentionConfig
from memecat.models.registry import model_class
from memecat.models.simre import SimReConfig, SimReModel, prompt_columns, prompt_polarity, task_temperature
from memecat.models.thresholds import choose_thresholds
from memecat.tasks import VALIDATION_SPLIT, Task, get_task, load_split

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
RUNS = Path(__file__).resolve().parent / "results" / "simre_runs.jsonl"
TEMPERATURES = (0.05, 0.1, 0.2, 0.5)
# Label-attention rows use the frozen-encoder recipe they were measured with (the previous default):
# one fine-tuned fit costs ~15x more. Its options, read from the shipped config file that names them.
LA_FROZEN = load_config(LabelAttentionConfig, FIGURES.parent / "configs" / "label-attention-frozen.yaml").model_dump(
    exclude_unset=True)
# name -> (model type, config overrides); the first row of each table is its t-test baseline.
# Tables 1 and 2 were first measured with grid mixing, the default then; pixel mixing became the default after
# the mixing comparison below. Table 1 keeps both rows; Table 2 was rerun with pixel mixing.
TABLE1 = {"SimRe (pixel mixing, default)": ("simre", {"mix": "pixel"}),
          "SimRe (grid mixing)": ("simre", {"mix": "grid"}),
          "w/o simulation": ("simre", {"simulation": False}),
          "label-attention (one model)": ("label-attention", {"ensemble_size": 1, **LA_FROZEN})}
# Recreated images: mixed pixels (encoded once per run) or mixed grid features (fresh pairs every step).
MIXING = {"pixel mixing (default)": ("simre", {"mix": "pixel"}), "grid mixing": ("simre", {"mix": "grid"})}
# One network (the paper's) or a 3-member ensemble, each member holding out its own 96 memes.
ENSEMBLE = {"one network (default)": ("simre", {"mix": "pixel"}),
            "3-member ensemble": ("simre", {"mix": "pixel", "ensemble_size": 3})}
# Harm tasks: the plain argmax (the default) or class offsets chosen on the held-out memes for macro-F1.
OFFSETS = {"argmax (default)": ("simre", {"mix": "pixel"}),
           "class offsets for macro-F1": ("simre", {"mix": "pixel", "class_offsets": True})}
# The frozen text encoder (the default) or its last 3 layers trained with the model, as the paper fine-tunes CLIP.
FINETUNE = {"frozen encoder (default)": ("simre", {"mix": "pixel"}),
            "last 3 MiniLM layers fine-tuned": ("simre", {"mix": "pixel", "finetune_layers": 3})}
# Ordered harm levels (harm-c-3) in the label-attention model: softmax over levels or ordinal steps.
LEVELS = {"label-attention softmax (default)": ("label-attention", {"ensemble_size": 1, **LA_FROZEN}),
          "label-attention ordinal": ("label-attention", {"ensemble_size": 1, **LA_FROZEN, "levels": "ordinal"})}


def table2_rows(task: Task) -> dict[str, tuple[str, dict]]:
    """One row per temperature; the task's default temperature is Table 1's SimRe run."""
    default = task_temperature(task, SimReConfig())
    return {f"tau = {t}" + (" (default)" if t == default else ""):
            ("simre", {"mix": "pixel"} if t == default else {"mix": "pixel", "temperature": t}) for t in TEMPERATURES}


def run_key(task: str, model: str, config: dict, seed: int, fold: int, folds: int) -> str:
    return json.dumps([task, model, config, seed, fold, folds], sort_keys=True)


def resolved(model: str, overrides: dict) -> dict:
    """The full config a run trains with (seed aside): what a change of defaults would alter under the same key."""
    cls = model_class(model)
    return cls.config_class(**overrides).model_dump(mode="json", exclude={"seed"})


def recorded(model: str, overrides: dict) -> dict[str, dict]:
    """Scores of the recorded runs by key, leaving out runs made under other defaults. (Runs recorded before
    the resolved config was stored carry none; they ran with the defaults of their day, which the row's
    overrides pin where those have changed since. A field added to the config since a run is not compared:
    a new option's default is the behaviour from before it existed.)"""
    if not RUNS.exists():
        return {}
    records = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    current = resolved(model, overrides)
    return {r["key"]: r["scores"] for r in records
            if all(k in current and current[k] == v for k, v in r.get("config", current).items())}


def cv_runs(task: Task, memes, model: str, overrides: dict, folds: int, seeds: list[int],
            report_only: bool = False, only_folds: set[int] | None = None) -> list[dict] | None:
    """Scores of every (seed, fold) run, in a fixed order so two rows pair up run by run.

    report_only: fit nothing; None when a run is missing from the record. only_folds: fit these folds only
    (to split a row across processes); the others count as missing."""
    y = task.encode(memes)
    runs, missing = [], False
    for seed in seeds:
        for k, (train_idx, test_idx) in enumerate(fold_splits(task, memes, folds, seed)):
            key = run_key(task.name, model, overrides, seed, k, folds)
            done = recorded(model, overrides)  # read afresh: other processes may have added runs since
            if key not in done and (report_only or (only_folds is not None and k not in only_folds)):
                missing = True
                continue
            if key not in done:
                started = time.perf_counter()
                cls = model_class(model)
                fitted = cls(task, cls.config_class(**{**overrides, "seed": seed * 100 + k}))
                fitted.fit([memes[i] for i in train_idx], None)
                proba = fitted.predict_proba([memes[i] for i in test_idx])
                done[key] = task_scores(task, y[test_idx], fitted.decide(proba))
                record = {"key": key, "config": resolved(model, overrides), "scores": done[key],
                          "seconds": round(time.perf_counter() - started, 1)}
                if task.multi_label:  # both threshold modes on the same model, for the record
                    record["by_threshold_mode"] = {
                        mode: task_scores(task, y[test_idx], (proba >= choose_thresholds(*fitted.held_out, mode))
                                          .astype(int)) for mode in ("global", "per-label", "joint")}
                with RUNS.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(json.dumps({"model": model, "overrides": overrides, "seed": seed, "fold": k, **record}),
                      flush=True)
            runs.append(done[key])
    return None if missing else runs


def table(rows: dict[str, list[dict]], folds: int, baseline: str) -> str:
    """Markdown: per metric the mean over all (seed, fold) runs, +- the std over seeds of the seeds' CV means
    (and over all runs); p-values of a paired t-test over the (seed, fold) runs against `baseline`."""
    metrics = list(next(iter(rows.values()))[0])
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


def figures(task: Task, train, held_out, overrides: dict, rows: int) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    curves = {}
    for name, simulation in (("SimRe", True), ("w/o simulation", False)):
        model = SimReModel(task, SimReConfig(**{**overrides, "simulation": simulation})).fit(train, None)
        s_pos, s_neg = batch_similarities(model, held_out, rows)
        tau = task_temperature(task, model.config)
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
        curves[name] = negative_weights(s_pos, s_neg, tau)
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
    parser.add_argument("--part", default="table1,table2,figures", help="comma-separated: table1,table2,mixing,ensemble,offsets,finetune,levels,figures")
    parser.add_argument("--only", default=None, help="run this row of the tables only (no table printed)")
    parser.add_argument("--report", action="store_true", help="fit nothing: print the tables of recorded runs")
    parser.add_argument("--only-folds", default=None, help="comma-separated folds to fit (split a row across processes)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--config", default="{}", help="JSON of SimReConfig overrides for every SimRe run")
    parser.add_argument("--rows", type=int, default=48, help="(meme, category) rows in the figures' batch")
    args = parser.parse_args()
    task = get_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = json.loads(args.config)
    parts = set(args.part.split(","))
    only_folds = None if args.only_folds is None else {int(k) for k in args.only_folds.split(",")}
    memes = load_split(task, "train") + load_split(task, VALIDATION_SPLIT[task.name])
    RUNS.parent.mkdir(parents=True, exist_ok=True)
    parts_defined = (("table1", TABLE1), ("table2", table2_rows(task)), ("mixing", MIXING), ("ensemble", ENSEMBLE),
                     ("offsets", OFFSETS), ("finetune", FINETUNE), ("levels", LEVELS))
    for part, definitions in parts_defined:
        if part not in parts:
            continue
        rows = {}
        for name, (model, row_config) in definitions.items():
            if args.only in (None, name):
                config = {**overrides, **row_config} if model == "simre" else row_config
                runs = cv_runs(task, memes, model, config, args.folds, seeds, report_only=args.report,
                               only_folds=only_folds)
                if runs is None:
                    print(f"{part}: {name!r} has runs missing; left out")
                else:
                    rows[name] = runs
        if args.only is None and rows:
            baseline = next((n for n in rows if "default" in n), next(iter(rows)))
            print(f"\n{part} ({args.task}, {args.folds}-fold CV, seeds {args.seeds})\n"
                  + table(rows, args.folds, baseline))
    if "figures" in parts and not args.report:
        figures(task, load_split(task, "train"), load_split(task, VALIDATION_SPLIT[task.name]), overrides,
                args.rows)
        print(f"\nfigures written to {FIGURES}")


if __name__ == "__main__":
    main()
