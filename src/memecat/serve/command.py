"""`memecat serve`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True, help="Model folder.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def serve(model_dir, host, port) -> None:
    """Serve a model as a JSON API with a web page at /."""
    from memecat.serve.app import run_server

    run_server(model_dir, host, port)
