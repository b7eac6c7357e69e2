"""How to turn an ensemble's member scores into decisions, compared on the same models.

Reads the member-level predictions that recipes.py saves (runs/recipes/NAME_seedS.npz):
for every CV fold, each member's scores on its own held-out dev memes (where thresholds are chosen) and on
the scored fold. Thresholds come from the pooled held-out scores, as in training; the rules differ in how
the members' scores are combined before the thresholds apply:

    mean-proba   average the probabilities (the paper's ensemble)
    mean-logit   average the logits, compare with the thresholds' logits
    vote         each member decides with the thresholds; a label is predicted when half or more say so

and, averaging probabilities, joint thresholds that weigh macro-F1 0.5-3 times against micro-F1.

Single-member scores are what the thresholds were tuned on; averaging makes scores less extreme, so a
threshold tuned on single members fits a vote better than an average.

    python benchmarks/ensemble_decision_rules.py runs/recipes/default-rerun_seed0.npz
    python benchmarks/ensemble_decision_rules.py runs/recipes/s11-default_seed1_folds0-1-2.npz \\
        runs/recipes/s11-default_seed1_folds3-4.npz
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np

from memecat.metrics import task_scores
from memecat.models.thresholds import choose_thresholds, joint_thresholds
from memecat.tasks import get_task

MACRO_WEIGHTS = (0.5, 1.5, 2.0, 3.0)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def decide(rule: str, members: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """members [K, N, C] probabilities -> decisions [N, C]."""
    if rule == "mean-proba":
        return (members.mean(0) >= thresholds).astype(int)
    if rule == "mean-logit":
        return (logit(members).mean(0) >= logit(thresholds)).astype(int)
    if rule == "vote":
        return ((members >= thresholds).mean(0) >= 0.5).astype(int)
    raise ValueError(rule)


def saved_folds(paths: list[str]):
    """Per CV fold of the saved runs: member scores on the scored fold [K, N, C], the pooled held-out labels
    and scores the thresholds are chosen on, and the scored fold's labels."""
    for path in paths:
        saved = np.load(path)
        for k in sorted({int(m.group(1)) for key in saved.files if (m := re.match(r"fold(\d+)_test_idx", key))}):
            members = saved[f"fold{k}_members"]
            held = [(saved[f"fold{k}_member{m}_dev_y"], saved[f"fold{k}_member{m}_dev_proba"])
                    for m in range(len(members))]
            held_y, held_p = (np.concatenate(part) for part in zip(*held))
            yield members, held_y, held_p, saved["y"][saved[f"fold{k}_test_idx"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", nargs="+",
                        help=".npz files written by recipes.py; the folds of several (one run split by --only-folds) pool")
    args = parser.parse_args()
    task = get_task("semeval-t6")
    scores: dict[tuple[str, str], list[dict]] = {}
    for members, held_y, held_p, y_test in saved_folds(args.predictions):
        for mode in ("global", "per-label", "joint"):
            thresholds = choose_thresholds(held_y, held_p, mode)
            for rule in ("mean-proba", "mean-logit", "vote"):
                decided = decide(rule, members, thresholds)
                scores.setdefault((mode, rule), []).append(task_scores(task, y_test, decided))
        for weight in MACRO_WEIGHTS:  # how far joint thresholds can trade micro-F1 for macro-F1
            decided = decide("mean-proba", members, joint_thresholds(held_y, held_p, macro_weight=weight))
            scores.setdefault((f"joint, macro-F1 x{weight}", "mean-proba"), []).append(
                task_scores(task, y_test, decided))
    print("| thresholds | rule | micro-F1 | macro-F1 |\n|---|---|---|---|")
    for (mode, rule), runs in scores.items():
        cells = [f"{np.mean([r[m] for r in runs]):.4f} ± {np.std([r[m] for r in runs]):.4f}"
                 for m in ("micro_f1", "macro_f1")]
        print(f"| {mode} | {rule} | " + " | ".join(cells) + " |")
    print(json.dumps({f"{mode}/{rule}": {m: float(np.mean([r[m] for r in runs])) for m in ("micro_f1", "macro_f1")}
                      for (mode, rule), runs in scores.items()}))


if __name__ == "__main__":
    main()
