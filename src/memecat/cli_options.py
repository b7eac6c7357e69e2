"""Options and helpers shared by the command modules (no heavy imports: `memecat --help` stays fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

TASK_HELP = "Task name: semeval-t6, harm-c-2, harm-c-3 or harm-c-target."
data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder holding semeval2021-task6/ and harm-c/ (default: $MEMECAT_DATA or ../shared/data).")


extra_data_option = click.option(
    "--extra-data", "extra_data", multiple=True, default=None,
    help="Extra training sources, comma-separated or repeated: semeval2024-task4, ptc (semeval-t6); harm-p "
         "(harm-c tasks); none. Overrides the recipe's extra_data.")


def model_options(f):
    """--model, --recipe, --seed and the encoder and extra-data overrides: what builds an unfitted model."""
    options = [
        click.option("--model", "model_name", default=None,
                     help="Model: majority, linear-probe, label-attention or simre (`memecat models`)."),
        click.option("--recipe", default=None,
                     help="A shipped recipe's name (`memecat models`) or a recipe file (YAML/JSON)."),
        click.option("--seed", type=int, default=None, help="Random seed (same seed, same data: same model)."),
        click.option("--text-encoder", default=None,
                     help="Text encoder: a registered name, a Hugging Face repo id or a local folder."),
        click.option("--image-encoder", default=None,
                     help="Image encoder: a registered name, a Hugging Face repo id or a local folder."),
        extra_data_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def fail(message: str, code: int = 2) -> None:
    click.echo(f"memecat: error: {message}", err=True)
    sys.exit(code)
