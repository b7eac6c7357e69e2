"""What extra training sources add: 5-fold CV over the task's train+val with and without them.

    python benchmarks/extra_data.py --task semeval-t6 --sources none,semeval2024-task4 --seeds 0,1,2
    python benchmarks/extra_data.py --task semeval-t6 --report

Every CV fold trains on its K-1 folds plus every meme of the named sources and is scored on its held-out
fold of the task's own memes only. For semeval-t6 each run also fits on all of train+dev (+ sources) and scores
the SemEval-2024 `val.json` memes (text only), a second held-out check. A source set is `+`-joined names
(`semeval2024-task4+ptc`), `none` for the task's own memes alone. The model is --model (default linear-probe)
or --recipe's, with --options on top; `--name` labels the row (default: the source set);
`--ptc-context` / `--ptc-merged` read PTC another way than its default. One JSON line per (row, seed) goes to
benchmarks/results/extra_data.jsonl; a run already recorded is skipped. `--report` prints the tables: CV
mean ± std over seeds, paired t-test p over the (seed, fold) runs against the same model's `none` row, and
per-label F1 of the pooled out-of-fold decisions (`--baseline NAME` pairs against another row, `--only NAME`,
repeated, shows those rows alone).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from functools import partial

import numpy as np
from common import RESULTS, add_model_options, builder, model_config
from scipy.stats import ttest_rel

from memecat.data.sources import (
    SOURCES,
    default_weight,
    load_sources,
    parse_sources,
    scan_ptc,
    scan_semeval2024,
)
from memecat.evaluation import cross_validate
from memecat.metrics import per_label_table, task_scores
from memecat.tasks import VALIDATION_SPLIT, get_task, load_split, resolve_data_root

RECORDS = RESULTS / "extra_data.jsonl"


def records() -> list[dict]:
    if not RECORDS.exists():
        return []
    return [json.loads(line) for line in RECORDS.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> None:
    task = get_task(args.task)
    root = resolve_data_root(None)
    # PTC read another way than the shipped default, to measure the choice.
    SOURCES["ptc"] = replace(SOURCES["ptc"], scan=partial(scan_ptc, context=args.ptc_context, merged=args.ptc_merged))
    memes = load_split(task, "train") + load_split(task, VALIDATION_SPLIT[task.name])
    model_name, config = model_config(args.model or (None if args.recipe else "linear-probe"), args.recipe,
                                      args.options)
    done = {(r["task"], r["model"], r["name"], r["seed"]) for r in records()}
    for source_set in args.sources.split(","):
        sources = parse_sources(source_set.replace("+", ","))
        name = args.name or source_set
        extra = load_sources(task.name, sources, root)
        build = builder(model_name, task, {**config, "extra_data": sources}, args.cache)
        for seed in [int(s) for s in args.seeds.split(",")]:
            if (task.name, model_name, name, seed) in done:
                print(f"{name} seed {seed}: recorded, skipped", flush=True)
                continue
            started = time.perf_counter()
            result = cross_validate(task, build, memes, folds=args.folds, seed=seed, extra=extra)
            seconds = time.perf_counter() - started
            gold = task.encode(memes)
            weights = {s: config.get("source_weights", {}).get(s, default_weight(s)) for s in sources}
            row = {"task": task.name, "model": model_name, "name": name, "sources": list(sources), "weights": weights,
                   "recipe": args.recipe, "config": config,
                   "ptc": {"context": args.ptc_context, "merged": args.ptc_merged}, "seed": seed, "cv_seconds": round(seconds, 1), "folds": result["runs"],
                   "mean": result["mean"],
                   "per_label_f1": [r["f1"] for r in per_label_table(gold, result["oof_pred"], task.labels)]}
            if task.name == "semeval-t6" and not args.no_val2024:
                val2024, _ = scan_semeval2024(root, "val")
                model = build(seed).fit(memes + extra)
                row["val2024"] = task_scores(task, task.encode(val2024), model.decide(model.predict_proba(val2024)))
            with RECORDS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name} seed {seed}: cv {result['mean']}  val2024 {row.get('val2024', '-')}  ({seconds:.0f}s)",
                  flush=True)


def report(task_name: str, baseline: str, only: list[str] | None) -> None:
    task = get_task(task_name)
    rows = [r for r in records() if r["task"] == task_name and (only is None or r["name"] in only)]
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by_key.setdefault((r["model"], r["name"]), []).append(r)
    metrics = list(rows[0]["folds"][0]) if rows else []
    val_column = " 2024 val micro / macro-F1 |" if task.name == "semeval-t6" else ""
    print("| model | training data | seeds | " + " | ".join(f"CV {m}" for m in metrics)
          + f" | p vs {baseline} |{val_column} one CV fold |")
    print("|" + "---|" * (len(metrics) + 5 + bool(val_column)))
    for (model, name), runs in by_key.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        cells = [f"{np.mean([r['mean'][m] for r in runs]):.4f}"
                 + (f" ± {np.std([r['mean'][m] for r in runs]):.4f}" if len(runs) > 1 else "") for m in metrics]
        base = {r["seed"]: r for r in by_key.get((model, baseline), [])}
        paired = [(b, r) for r in runs if (b := base.get(r["seed"])) is not None]
        p = "–"
        if name != baseline and paired:
            pvals = []
            for m in metrics[:2]:
                a = [f[m] for b, _ in paired for f in b["folds"]]
                c = [f[m] for _, r in paired for f in r["folds"]]
                pvals.append(f"{ttest_rel(c, a).pvalue:.3f}")
            p = " / ".join(pvals)
        val = ""
        if val_column:
            val = " – |"
            if all("val2024" in r for r in runs):
                val = " " + " / ".join(f"{np.mean([r['val2024'][m] for r in runs]):.4f}"
                                       for m in ("micro_f1", "macro_f1")) + " |"
        seconds = np.mean([r["cv_seconds"] for r in runs]) / len(runs[0]["folds"])
        print(f"| {model} | {name} | {','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells)
              + f" | {p} |{val} {seconds:.0f} s |")
    if not task.multi_label:
        return
    print("\nPer-label F1 of the pooled out-of-fold decisions, mean over seeds")
    names = list(by_key)
    print("| label | " + " | ".join(f"{m} {n}" for m, n in names) + " |")
    print("|" + "---|" * (len(names) + 1))
    for j, label in enumerate(task.labels):
        cells = [f"{np.mean([r['per_label_f1'][j] for r in by_key[k]]):.3f}" for k in names]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--model", default=None, help="default: the recipe's model, else linear-probe")
    add_model_options(parser)
    parser.add_argument("--sources", default="none", help="comma-separated source sets, each +-joined names")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--name", default=None, help="row name (default: the source set)")
    parser.add_argument("--ptc-context", choices=["sentence", "fragment"], default="sentence")
    parser.add_argument("--ptc-merged", choices=["all", "drop"], default="all")
    parser.add_argument("--no-val2024", action="store_true", help="skip the SemEval-2024 val check")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--baseline", default="none", help="report: the row each p-value pairs against")
    parser.add_argument("--only", action="append", default=None, help="report: a row name to show (repeatable)")
    args = parser.parse_args()
    if args.report:
        report(args.task, args.baseline, args.only)
    else:
        run(args)


if __name__ == "__main__":
    main()
