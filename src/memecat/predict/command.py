"""`memecat predict`."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from memecat.cli_options import data_root_option, fail
from memecat.errors import MemecatError


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True, help="Model folder.")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="Dataset file (JSONL/CSV/Parquet/JSON/SemEval .txt) or a folder of images with a text sidecar.")
@click.option("--split", default=None, help="A split of the model's task dataset instead of --input (e.g. test).")
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="One meme's image; alone (or with empty --text) an image-only meme.")
@click.option("--text", default=None, help="One meme's text; alone (no --image) a text-only meme.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("-"), help="Output file, or - for stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl", "csv", "parquet"]), default=None,
              help="Output format (default: from --out's suffix; JSON is the organisers' format).")
@click.option("--explain", is_flag=True, help="Add per-label scores and the model's explanation.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Memes per batch: what memory holds, and what an interruption can cost.")
@click.option("--resume", is_flag=True,
              help="Keep what an interrupted job (or a finished JSONL/Parquet --out) holds; predict the rest.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run the batches here, or on Ray (pip install memecat[ray]).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray: model actors (default: the cluster's CPUs); also the CPUs of a local Ray.")
@click.option("--ray-address", default=None,
              help="Ray: an existing cluster (e.g. auto, or ray://head:10001); without it a local Ray starts.")
@click.option("--allow-outside-paths", is_flag=True,
              help="Let a dataset's image paths point outside its folder (absolute, or climbing with ..).")
@data_root_option
def predict(model_dir, input_path, split, image, text, out, fmt, explain, batch_size, resume, engine, workers,
            ray_address, allow_outside_paths, data_root) -> None:
    """Predict the categories of memes with a trained model folder.

    Every input record gets one output record: its labels, or an error naming the problem. Finished batches
    are kept in OUT.parts/ until the output is written, so a stopped job loses at most the batches in flight;
    run it again with --resume to finish. Exit code 1 if any record failed.
    """
    from memecat.predict.inputs import one_meme, split_source
    from memecat.predict.job import predict_dataset
    from memecat.predict.outputs import output_format

    fmt = output_format(out, fmt)
    chosen = [input_path is not None, split is not None, image is not None or text is not None]
    if sum(chosen) != 1:
        raise MemecatError("give exactly one of --input, --split, or one meme's --image and/or --text")
    if explain and fmt == "csv":
        raise MemecatError("--explain needs JSON, JSONL or Parquet output; CSV keeps only labels and scores")
    if resume and str(out) == "-":
        raise MemecatError("--resume needs an output file (--out FILE)")
    if engine == "ray":
        _check_ray()
    if split is not None:
        from memecat.models.base import read_model_metadata

        source = split_source(read_model_metadata(model_dir)["task"], split, data_root)
    elif input_path is not None:
        source = input_path
    else:
        source = one_meme(image=image, text=text)
    try:
        with _sigterm_as_interrupt():
            summary = predict_dataset(model_dir, source, out, engine=engine, resume=resume, fmt=fmt,
                                      batch_size=batch_size, explain=explain, allow_outside_paths=allow_outside_paths,
                                      workers=workers, ray_address=ray_address, progress=sys.stderr.isatty())
    except KeyboardInterrupt:
        parts = Path(f"{out}.parts")
        kept = f"; the finished batches are in {parts}: run the same command with --resume to finish" \
            if str(out) != "-" and parts.is_dir() else ""
        fail(f"interrupted{kept}", code=130)
    click.echo(summary.line().replace("-: ", "<stdout>: ", 1) if str(out) == "-" else summary.line(), err=True)
    if summary.errors:
        fail(f"{summary.errors} of {summary.records} memes could not be predicted (see their 'error' records)",
             code=1)


def _check_ray() -> None:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MemecatError("the Ray engine needs Ray Data: pip install 'memecat[ray]'") from None


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler stopping the job) ends it like Ctrl-C: temporary files removed, a clear message."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
