"""`memecat predict`."""

from __future__ import annotations

from pathlib import Path

import click

from memecat.cli_options import data_root_option, fail
from memecat.errors import MemecatError


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True, help="Model folder.")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="Dataset file (JSON/JSONL/CSV/SemEval .txt) or a folder of images with a text sidecar.")
@click.option("--split", default=None, help="A split of the model's task dataset instead of --input (e.g. test).")
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="One meme's image; alone (or with empty --text) an image-only meme.")
@click.option("--text", default=None, help="One meme's text; alone (no --image) a text-only meme.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("-"), help="Output file, or - for stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl", "csv"]), default=None,
              help="Output format (default: from --out's suffix; JSON is the organisers' format).")
@click.option("--explain", is_flag=True, help="Add per-label scores and the model's explanation.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@data_root_option
def predict(model_dir, input_path, split, image, text, out, fmt, explain, batch_size, data_root) -> None:
    """Predict the categories of memes with a trained model folder."""
    from memecat.models.base import load_model
    from memecat.predict_io import collect_inputs, output_format, predict_safely, write_predictions
    from memecat.tasks import load_split

    output_format(out, fmt)
    chosen = [input_path is not None, split is not None, image is not None or text is not None]
    if sum(chosen) != 1:
        raise MemecatError("give exactly one of --input, --split, or one meme's --image and/or --text")
    if explain and (fmt == "csv" or str(out).endswith(".csv")):
        raise MemecatError("--explain needs JSON or JSONL output; CSV keeps only labels and scores")
    model = load_model(model_dir)
    if split is not None:
        memes = load_split(model.task, split, data_root)
    else:
        memes = collect_inputs(image=image, text=text, input_path=input_path)
    records, failures = predict_safely(model, memes, batch_size=batch_size, explain=explain)
    write_predictions(records, out, fmt)
    if str(out) != "-":
        click.echo(f"wrote {len(records) - failures} predictions to {out}", err=True)
    if failures:
        fail(f"{failures} of {len(records)} memes could not be read (see their 'error' records)", code=1)
