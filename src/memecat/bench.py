"""`memecat bench`: prediction throughput, cold and warm, on a task split's image files.

export one-off: export the model's encoders to ONNX Runtime (first use on a machine; needs PyTorch)
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

from memecat.encoders.cache import FeatureCache
from memecat.features import FeatureExtractor
from memecat.models.base import EncoderConfig, load_model
from memecat.tasks import load_split


def _timed_predict(model, memes, features: FeatureExtractor) -> float:
    model.features = features
    started = time.perf_counter()
    for start in range(0, len(memes), 64):
        model.predict(memes[start:start + 64])
    return time.perf_counter() - started


def predict_throughput(model_dir: Path, split: str = "test", data_root: Path | None = None) -> dict[str, float]:
    model = load_model(model_dir)
    if not isinstance(model.config, EncoderConfig):
        raise SystemExit(f"{model_dir}: a {model.model_type} model reads no features; nothing to time")
    memes = load_split(model.task, split, data_root)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        features = FeatureExtractor.from_names(model.config.text_encoder, model.config.image_encoder, cache)
        features.frozen("image")  # exports into the cache folder, once per machine
        features.frozen("text", getattr(model.config, "finetune_layers", 0))
        export = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "memecat.cli", "predict", "--model", str(model_dir), "--split", split,
             "--out", os.devnull, "--format", "json", *(["--data-root", str(data_root)] if data_root else [])],
            check=True, env={**os.environ, "MEMECAT_CACHE": cache}, stderr=subprocess.DEVNULL)
        cold = time.perf_counter() - started

        def empty_cache() -> FeatureExtractor:  # the loaded encoders and runners over an empty feature store
            return features.with_cache(FeatureCache(tempfile.mkdtemp(dir=cache)))

        _timed_predict(model, memes[:8], empty_cache())  # warm up kernels
        warm = _timed_predict(model, memes, empty_cache())
        cached = _timed_predict(model, memes, features)  # features stored by the cold run
    n = len(memes)
    return {"memes": n, "export_s": export, "cold_memes_per_s": n / cold, "warm_memes_per_s": n / warm,
            "cached_memes_per_s": n / cached, "cold_s": cold, "warm_s": warm}
