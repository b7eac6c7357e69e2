"""`memecat serve`."""

from __future__ import annotations

from pathlib import Path

import click

MiB = 1024 * 1024


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True,
              help="Model folder; verified before the server starts.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind (0.0.0.0: every interface; put auth or a proxy in front).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--max-batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most memes the model scores in one call (server-side micro-batching).")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Longest a meme waits for others to join its batch.")
@click.option("--max-queue", type=click.IntRange(min=1), default=64, show_default=True,
              help="Memes that may wait for the model; beyond it requests get 503 with Retry-After.")
@click.option("--max-call-megapixels", type=click.FloatRange(min=1), default=48.0, show_default=True,
              help="Decoded image pixels per model call: a batch of huge images is decoded a few at a time.")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Per-request deadline; a request not answered by then gets 504.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Largest image accepted.")
@click.option("--max-text-chars", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Longest meme text accepted.")
@click.option("--max-batch-items", type=click.IntRange(min=1), default=32, show_default=True,
              help="Most memes in one POST /v1/predict/batch.")
@click.option("--max-batch-mb", type=click.FloatRange(min=0, min_open=True), default=32.0, show_default=True,
              help="Largest batch request body.")
@click.option("--feature-cache-mb", type=click.FloatRange(min=0), default=64.0, show_default=True,
              help="In-memory cache of recent memes' encoder features (uploads never reach the disk cache).")
@click.option("--api-key-env", default=None, metavar="NAME",
              help="Require 'Authorization: Bearer <key>' on the scoring endpoints, the key read from "
                   "environment variable NAME. Off by default.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A browser origin allowed to call the API (repeatable). CORS is off by default.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
def serve(model_dir, host, port, max_batch_size, max_wait_ms, max_queue, max_call_megapixels, timeout_s, max_upload_mb, max_text_chars,
          max_batch_items, max_batch_mb, feature_cache_mb, api_key_env, cors_origins, log_level) -> None:
    """Serve a model as a JSON API with a web page at /: GET /healthz, /readyz, /metrics, /v1/model;
    POST /v1/predict, /v1/predict/batch; API docs at /docs."""
    from memecat.serve.app import run_server
    from memecat.serve.auth import api_key_from_env
    from memecat.serve.settings import ServeSettings

    settings = ServeSettings(
        max_upload_bytes=int(max_upload_mb * MiB), max_text_chars=max_text_chars, max_batch_items=max_batch_items,
        max_batch_body_bytes=int(max_batch_mb * MiB), max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
        max_queue=max_queue, max_call_pixels=int(max_call_megapixels * 1e6), timeout_s=timeout_s, feature_cache_bytes=int(feature_cache_mb * MiB),
        api_key=api_key_from_env(api_key_env) if api_key_env else None, cors_origins=tuple(cors_origins))
    run_server(model_dir, host, port, settings, log_level=log_level)
