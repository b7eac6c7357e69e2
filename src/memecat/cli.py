"""The `memecat` command line: run · train · predict · evaluate · cv · models · data check · serve · bench."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from memecat.cli_options import TASK_HELP, data_root_option, fail, model_options
from memecat.errors import MemecatError


class Group(click.Group):
    """Turns MemecatError into one line on stderr instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MemecatError as exc:
            fail(str(exc))


@click.group(cls=Group)
@click.version_option(package_name="memecat")
def cli() -> None:
    """Say which categories an internet meme belongs to (persuasion techniques, harmfulness)."""


def build_model(task_name: str, model_name: str | None, recipe_name: str | None, *, seed: int | None = None,
                extra_data: tuple[str, ...] = (), text_encoder: str | None = None, image_encoder: str | None = None,
                features=None):
    """An unfitted model from --model and/or --recipe, with the command line's overrides on top."""
    from memecat.data.sources import parse_sources
    from memecat.models.registry import create_model
    from memecat.recipes import load_recipe

    recipe = load_recipe(recipe_name) if recipe_name else None
    if recipe and recipe.model and model_name and model_name != recipe.model:
        raise MemecatError(f"recipe {recipe.name!r} is for model {recipe.model!r}, not {model_name!r}")
    name = model_name or (recipe.model if recipe else None)
    if name is None:
        raise MemecatError("name a model with --model, or a recipe with --recipe (`memecat models` lists both)")
    options = dict(recipe.config) if recipe else {}
    overrides = {"seed": seed, "text_encoder": text_encoder, "image_encoder": image_encoder,
                 "extra_data": parse_sources(extra_data) if extra_data else None}
    options.update({k: v for k, v in overrides.items() if v is not None})
    model = create_model(name, task_name, features, **options)
    model.recipe = recipe.name if recipe else None
    model.metrics.update(recipe.figures if recipe else {})
    return model


def shared_features(model):
    """The model's feature extractor, to share between the models of one command (None if it reads none)."""
    from memecat.models.base import EncoderConfig

    return model.features if isinstance(model.config, EncoderConfig) else None


def _extra_memes(model, data_root) -> list:
    from memecat.data.sources import load_sources
    from memecat.tasks import resolve_data_root

    if not model.config.extra_data:
        return []
    memes = load_sources(model.task.name, model.config.extra_data, resolve_data_root(data_root))
    click.echo(f"extra training data: {len(memes)} memes from {', '.join(model.config.extra_data)}", err=True)
    return memes


def _print_scores(title: str, scores: dict) -> None:
    click.echo(f"{title}: " + "  ".join(f"{k}={v:.4f}" for k, v in scores.items()))


@cli.command()
@click.option("--task", "task_name", required=True, help=TASK_HELP)
@model_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model folder to write.")
@data_root_option
def train(task_name, model_name, recipe, seed, text_encoder, image_encoder, extra_data, out, data_root) -> None:
    """Train on the task's training split (its validation split for selection) and write a model folder."""
    from memecat.metrics import task_scores
    from memecat.tasks import VALIDATION_SPLIT, load_split

    model = build_model(task_name, model_name, recipe, seed=seed, extra_data=extra_data,
                        text_encoder=text_encoder, image_encoder=image_encoder)
    task, split = model.task, VALIDATION_SPLIT[task_name]
    train_memes = load_split(task, "train", data_root) + _extra_memes(model, data_root)
    val_memes = load_split(task, split, data_root)
    model.log_dir = out / "logs"
    started = time.perf_counter()
    model.fit(train_memes, eval_memes=val_memes)
    click.echo(f"trained {model.model_type} on {len(train_memes)} memes in {time.perf_counter() - started:.0f}s")
    if model.config.trains_on_eval_memes:
        click.echo(f"no {split} score: this model also trains on those memes; `memecat run --no-refit` fits on "
                   "train alone and scores them, `memecat cv` gives held-out figures")
    else:
        scores = task_scores(task, task.encode(val_memes), model.decide(model.predict_proba(val_memes)))
        optimistic = model.config.selects_on_eval_memes  # it chose epochs and thresholds on these memes
        model.metrics[f"{split} (selection set, optimistic)" if optimistic else split] = scores
        _print_scores(f"{split} (chose early stopping and thresholds, so optimistic)" if optimistic else split, scores)
    model.save_pretrained(out)
    click.echo(f"saved to {out}")


@cli.command()
@click.option("--task", "task_name", required=True, help=TASK_HELP)
@click.option("--pred", "pred_path", type=click.Path(path_type=Path), required=True,
              help="Predictions: a JSON list, JSONL or CSV of {id, labels}.")
@click.option("--gold", "gold_path", type=click.Path(path_type=Path), required=True,
              help="Gold labels in the dataset's own format.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object of metrics.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Also write a report with tables and plots to this folder.")
@click.option("--report-format", type=click.Choice(["md", "html"]), default="md", show_default=True)
def evaluate(task_name, pred_path, gold_path, as_json, report_dir, report_format) -> None:
    """Score predictions against gold labels with the task's official metric."""
    from memecat.evaluation import score_files
    from memecat.metrics import per_label_text
    from memecat.tasks import get_task

    task = get_task(task_name)
    scores, gold, pred = score_files(task, pred_path, gold_path)
    if report_dir is not None:
        from memecat.report import write_report

        path = write_report(task, gold, pred, report_dir, fmt=report_format)
        click.echo(f"report written to {path}", err=True)
    if as_json:
        click.echo(json.dumps(scores))
        return
    _print_scores(task.name, scores)
    click.echo("\n" + per_label_text(gold, pred, task.labels))


@cli.command()
@click.option("--task", "task_name", required=True, help=TASK_HELP)
@model_options
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds; one CV run each.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_root_option
def cv(task_name, model_name, recipe, seed, text_encoder, image_encoder, extra_data, folds, seeds, as_json,
       data_root) -> None:
    """K-fold cross-validation over train+validation (the test split is never used); extra sources join every
    training fold and are never scored."""
    from memecat.evaluation import cross_validate, summarise
    from memecat.tasks import VALIDATION_SPLIT, load_split

    options = {"extra_data": extra_data, "text_encoder": text_encoder, "image_encoder": image_encoder}
    first = build_model(task_name, model_name, recipe, **options)
    features = shared_features(first)  # encoders loaded once for every fold
    task = first.task
    memes = load_split(task, "train", data_root) + load_split(task, VALIDATION_SPLIT[task.name], data_root)
    extra = _extra_memes(first, data_root)
    per_seed = []
    for run_seed in [int(s) for s in seeds.split(",")]:
        result = cross_validate(task, lambda s: build_model(task_name, model_name, recipe, seed=s, features=features,
                                                            **options),
                                memes, folds=folds, seed=run_seed, extra=extra)
        per_seed.append(result["mean"])
        if not as_json:
            _print_scores(f"seed {run_seed} ({folds}-fold mean)", result["mean"])
    summary = summarise(per_seed)
    if as_json:
        click.echo(json.dumps({"mean": summary["mean"], "std": summary["std"], "runs": per_seed}))
    else:
        click.echo("over seeds: " + "  ".join(f"{k}={summary['mean'][k]:.4f}±{summary['std'][k]:.4f}"
                                              for k in summary["mean"]))


# The recipe `memecat run` trains per task: the best by 5-fold CV over train+dev on the task's primary metric
# (SemEval: micro-F1, the organisers' ranking; harm: macro-F1); docs/results.md has the figures.
BEST_RECIPE = {"semeval-t6": ("linear-probe", "linear-probe-semeval2024"), "harm-c-2": ("linear-probe", None),
               "harm-c-3": ("linear-probe", None), "harm-c-target": ("linear-probe", None)}


@cli.command()
@click.option("--task", "task_name", default="semeval-t6", show_default=True, help=TASK_HELP)
@model_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/main"), show_default=True)
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="After scoring the validation split, refit on train+validation for the saved model and the "
                   "test predictions.")
@data_root_option
def run(task_name, model_name, recipe, seed, text_encoder, image_encoder, extra_data, out, refit, data_root) -> None:
    """The main job: train on the training split, score the validation split, then (with --refit) train again
    on both and predict the test split. Without --model or --recipe, the task's best recipe."""
    from memecat.metrics import per_label_text, task_scores
    from memecat.predict.outputs import write_predictions
    from memecat.tasks import VALIDATION_SPLIT, get_task, load_split

    task = get_task(task_name)
    if model_name is None and recipe is None:
        model_name, recipe = BEST_RECIPE[task.name]
    options = {"seed": 0 if seed is None else seed, "extra_data": extra_data, "text_encoder": text_encoder,
               "image_encoder": image_encoder}
    model = build_model(task_name, model_name, recipe, **options)
    val_split = VALIDATION_SPLIT[task.name]
    extra = _extra_memes(model, data_root)
    train_memes = load_split(task, "train", data_root)
    val_memes = load_split(task, val_split, data_root)
    test_memes = load_split(task, "test", data_root)
    model.log_dir = out / "logs"
    started = time.perf_counter()
    # Validation memes stay unseen (the model carves its own selection sets from train) so its score is honest.
    model.fit(train_memes + extra)
    seconds = time.perf_counter() - started
    gold = task.encode(val_memes)
    write_predictions(model.predict(val_memes), out / f"{val_split}_predictions.json")
    decided = model.decide(model.predict_proba(val_memes))
    scores = task_scores(task, gold, decided)
    with_extra = f" + {len(extra)} extra" if extra else ""
    click.echo(f"\n{task.name} · {model.recipe or model.model_type} · trained on {len(train_memes)}{with_extra} "
               f"memes in {seconds:.0f}s")
    click.echo(per_label_text(gold, decided, task.labels))
    _print_scores(f"\n{val_split} ({len(val_memes)} memes)", scores)
    if refit:  # the scored model has done its job; the shipped one learns from every labelled meme
        model = build_model(task_name, model_name, recipe, features=shared_features(model), **options)
        model.log_dir = out / "logs-refit"
        model.fit(train_memes + val_memes + extra)
        click.echo(f"refit on train+{val_split} ({len(train_memes) + len(val_memes)} memes)")
    model.metrics[f"{val_split} ({len(val_memes)} memes), scored by the same recipe fitted on train{with_extra}"] = scores
    model.save_pretrained(out / "model")
    write_predictions(model.predict(test_memes), out / "test_predictions.json")
    click.echo(f"model: {out / 'model'}   test predictions ({len(test_memes)}): {out / 'test_predictions.json'}")


@cli.command("models")
def models_command() -> None:
    """List the models, the shipped recipes and the registered encoders."""
    from memecat.encoders import encoder_catalog
    from memecat.models.registry import model_class, model_names
    from memecat.recipes import list_recipes

    click.echo("models:")
    for name in model_names():
        doc = (model_class(name).__doc__ or "").strip().splitlines()
        click.echo(f"  {name:<40} {doc[0] if doc else ''}")
    click.echo("recipes (--recipe NAME):")
    for recipe in list_recipes():
        click.echo(f"  {recipe.name:<40} [{recipe.model}] {recipe.description}")
    click.echo("encoders (--text-encoder / --image-encoder; also a Hugging Face repo id or a local folder):")
    for entry in encoder_catalog():
        offline = "" if entry["offline"] else " (needs its weights)"
        click.echo(f"  {entry['kind']:<6}{entry['name']:<34} {entry['description']}{offline}")


@cli.group()
def data() -> None:
    """Inspect datasets."""


@data.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "task_name", default=None, help="Also check labels against this task's label space.")
@click.option("--images/--no-images", default=True, show_default=True, help="Decode every image.")
def data_check(path, task_name, images) -> None:
    """Read a whole dataset file (or a data root) and list every problem found."""
    from memecat.data.check import check_path

    problems, count = check_path(path, task_name, decode_images=images)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        fail(f"{len(problems)} problem(s) in {count} memes", code=1)
    click.echo(f"{path}: {count} memes, no problems")


@cli.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=Path("runs/main/model"),
              show_default=True, help="Model folder to time.")
@click.option("--split", default="test", show_default=True, help="Split of the model's task to predict.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_root_option
def bench(model_dir, split, as_json, data_root) -> None:
    """Time prediction on a split's image files: cold process, warm model, cached features."""
    from memecat.bench import predict_throughput

    result = predict_throughput(model_dir, split, data_root)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['memes']} memes: encoder export {result['export_s']:.1f}s (once per machine), cold {result['cold_memes_per_s']:.1f} memes/s "
               f"({result['cold_s']:.1f}s incl. start-up), warm {result['warm_memes_per_s']:.1f} memes/s, "
               f"cached features {result['cached_memes_per_s']:.1f} memes/s")


def _add_commands() -> None:
    from memecat.predict.command import predict
    from memecat.serve.command import serve

    cli.add_command(predict)
    cli.add_command(serve)


_add_commands()


def main() -> None:
    cli(prog_name="memecat")


if __name__ == "__main__":
    main()
