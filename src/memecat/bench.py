"""`memecat bench`: prediction throughput, cold and warm, on a task split's image files.

export one-off: export the model's encoders to ONNX Runtime (first use on a machine)
cold   a new process: load the model and encoders, decode and encode every meme (empty feature cache)
warm   model loaded, empty feature cache: decoding and encoding included, as for new memes
cached model loaded, features already on disk (the same memes again)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memecat.encoders.runtime import frozen_runner
from memecat.models.base import load_model
from memecat.tasks import load_split


def _timed_predict(model, memes, cache_dir: str) -> float:
    from memecat.models import inputs

    os.environ["MEMECAT_CACHE"] = cache_dir
    inputs.feature_cache.cache_clear()
    started = time.perf_counter()
    for start in range(0, len(memes), 64):
        model.predict(memes[start:start + 64])
    return time.perf_counter() - started


def _export_encoders(model) -> float:
    """Seconds to export (or load) the model's frozen encoders into $MEMECAT_CACHE/onnx."""
    from memecat.models import inputs

    started = time.perf_counter()
    frozen_runner(inputs.image_encoder(model.config.image_encoder))
    # The text encoder's frozen part: all of it unless the model fine-tunes its last layers.
    frozen_runner(inputs.frozen_text_encoder(model.config.text_encoder, getattr(model.config, "finetune_layers", 0)))
    return time.perf_counter() - started


def predict_throughput(model_dir: Path, split: str = "test", data_root: Path | None = None) -> dict[str, float]:
    saved_cache = os.environ.get("MEMECAT_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MEMECAT_CACHE"] = cache
        model = load_model(model_dir)
        memes = load_split(model.task, split, data_root)
        export = _export_encoders(model)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "memecat.cli", "predict", "--model", str(model_dir), "--split", split,
             "--out", os.devnull, "--format", "json", *(["--data-root", str(data_root)] if data_root else [])],
            check=True, env={**os.environ, "MEMECAT_CACHE": cache}, stderr=subprocess.DEVNULL)
        cold = time.perf_counter() - started
        # In this process the exported encoders stay loaded, so empty feature folders are enough.
        _timed_predict(model, memes[:8], tempfile.mkdtemp(dir=cache))  # warm up kernels
        warm = _timed_predict(model, memes, tempfile.mkdtemp(dir=cache))
        cached = _timed_predict(model, memes, cache)  # features stored by the cold run
    if saved_cache is None:
        os.environ.pop("MEMECAT_CACHE", None)
    else:
        os.environ["MEMECAT_CACHE"] = saved_cache
    n = len(memes)
    return {"memes": n, "export_s": export, "cold_memes_per_s": n / cold, "warm_memes_per_s": n / warm,
            "cached_memes_per_s": n / cached, "cold_s": cold, "warm_s": warm}
