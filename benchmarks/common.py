"""What the benchmark scripts share: a model from --model / --recipe / --options, one feature extractor per pair
of encoders, and cross-validation that also scores every fold under each threshold mode. The scripts import it
from their own folder, which Python puts on the path when it runs one of them."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memecat.encoders.cache import FeatureCache
from memecat.evaluation import cross_validate, fold_splits
from memecat.features import FeatureExtractor
from memecat.metrics import task_scores
from memecat.models.base import EncoderConfig, MemeModel
from memecat.models.registry import create_model
from memecat.models.thresholds import choose_thresholds
from memecat.recipes import load_recipe
from memecat.tasks import Task

THRESHOLD_MODES = ("global", "per-label", "joint")
RESULTS = Path(__file__).resolve().parent / "results"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default=None, help="a shipped recipe's name or a recipe file (`memecat models`)")
    parser.add_argument("--options", default="{}",
                        help='config options as JSON, on top of the recipe (training options under "train")')
    parser.add_argument("--cache", type=Path, default=None,
                        help="feature cache folder (default: $MEMECAT_CACHE, else ~/.cache/memecat)")


def merged(base: dict, over: dict) -> dict:
    """`over` on top of `base`; the nested `train` mappings merge key by key."""
    out = {**base, **over}
    if isinstance(base.get("train"), dict) and isinstance(over.get("train"), dict):
        out["train"] = {**base["train"], **over["train"]}
    return out


def model_config(model: str | None, recipe: str | None, options: str) -> tuple[str, dict]:
    """The model's name and its config options: the recipe's (if any), then the JSON options on top."""
    loaded = load_recipe(recipe) if recipe else None
    name = model or (loaded.model if loaded else None)
    if name is None:
        raise SystemExit("name a model (--model) or a recipe (--recipe)")
    if loaded and loaded.model and loaded.model != name:
        raise SystemExit(f"recipe {loaded.name!r} is for model {loaded.model!r}, not {name!r}")
    return name, merged(loaded.config if loaded else {}, json.loads(options))


@functools.cache
def feature_extractor(text_encoder: str, image_encoder: str, cache: Path | None = None) -> FeatureExtractor:
    """One extractor per encoder pair and cache, so every model of a script loads the encoders once."""
    return FeatureExtractor.from_names(text_encoder, image_encoder, FeatureCache(cache) if cache else None)


def builder(model: str, task: Task, config: dict, cache: Path | None = None) -> Callable[[int], MemeModel]:
    """build(seed) -> an unfitted model with `config`, for cross_validate."""
    config = {k: v for k, v in config.items() if k != "seed"}
    checked = create_model(model, task, **config)  # a wrong option fails here, before any fit
    features = (feature_extractor(checked.config.text_encoder, checked.config.image_encoder, cache)
                if isinstance(checked.config, EncoderConfig) else None)
    return lambda seed: create_model(model, task, features=features, **config, seed=seed)


def resolved_config(model: str, task: Task, config: dict) -> dict:
    """Every option a run trains with (the seed aside): what a change of defaults would alter."""
    return create_model(model, task, **config).config.model_dump(mode="json", exclude={"seed"})


def cross_validate_modes(task: Task, build: Callable[[int], MemeModel], memes: list, folds: int = 5, seed: int = 0,
                         extra: list | None = None, modes: tuple[str, ...] = THRESHOLD_MODES) -> dict:
    """cross_validate, and for a multi-label task each fold's out-of-fold scores decided again under every
    threshold mode in `modes` ("by_threshold_mode": mode -> per-fold scores), so the modes compare on identical
    models. The thresholds come from the memes the fold's model held out, as its fit chose its own, so the
    models must be ensembles (label-attention, SimRe), which keep those scores."""
    held_out, current = [], []

    def build_and_keep(model_seed: int) -> MemeModel:
        if current:  # the previous fold's model has scored its fold: keep what its thresholds came from
            held_out.append(current.pop().held_out)
        current.append(build(model_seed))
        return current[0]

    result = cross_validate(task, build_and_keep, memes, folds=folds, seed=seed, extra=extra)
    held_out.append(current.pop().held_out)
    if task.multi_label:
        y, proba = task.encode(memes), result["oof_proba"]
        splits = fold_splits(task, memes, folds, seed)
        result["by_threshold_mode"] = {
            mode: [task_scores(task, y[test], (proba[test] >= choose_thresholds(*kept, mode)).astype(np.int64))
                   for kept, (_, test) in zip(held_out, splits)]
            for mode in modes}
    return result


def mean_std(runs: list[dict]) -> dict[str, float]:
    """Mean and std over runs of micro- and macro-F1, as recipes.jsonl keeps them."""
    return {f"{stat}_{metric}": float(fn([run[metric] for run in runs]))
            for metric in ("micro_f1", "macro_f1") for stat, fn in (("mean", np.mean), ("std", np.std))}
