"""One served model at run time: its scorer, its micro-batching queue, its metrics and its readiness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from memecat.errors import MemecatError
from memecat.models.base import EncoderConfig, MemeModel
from memecat.serve.batching import BatchStats, MicroBatcher
from memecat.serve.memory_cache import MemoryFeatureCache
from memecat.serve.metrics import ServiceMetrics
from memecat.serve.scoring import ItemError, Scorer, ScoreRequest
from memecat.serve.settings import ServeSettings


def use_memory_cache(model: MemeModel, max_bytes: int) -> MemoryFeatureCache | None:
    """Point the model's feature extractor at a capped in-memory cache, so no upload's features reach the disk;
    the extractor keeps its encoders and its ONNX folder. None for a model that reads no encoder features."""
    if not isinstance(model.config, EncoderConfig):
        return None
    cache = MemoryFeatureCache(max_bytes, root=model.features.cache.root)
    model.features = model.features.with_cache(cache)
    return cache


class Service:
    def __init__(self, model: MemeModel, settings: ServeSettings, model_id: str):
        if not model.is_fitted:
            raise MemecatError(f"this {model.model_type} model is not fitted: serve a trained model folder")
        self.model = model
        self.settings = settings
        self.cache = use_memory_cache(model, settings.feature_cache_bytes)
        self.scorer = Scorer(model, model_id, settings.max_call_pixels)
        self.identity = dict(self.scorer.identity)
        if not settings.warm_up:
            self.scorer.ready.set()
        self.metrics = ServiceMetrics(self.identity, depth=lambda: self.batcher.depth,
                                      ready=self.scorer.ready.is_set)
        self.batcher = MicroBatcher(self.scorer, settings.max_batch_size, settings.max_wait_ms / 1000,
                                    settings.max_queue,
                                    BatchStats(on_batch=self.metrics.on_batch, on_reject=self.metrics.on_reject))
        self._warm_up: asyncio.Future | None = None

    def start(self) -> None:
        """Start batching on the running loop and, once, the warm-up (in the model thread, before any batch)."""
        self.batcher.ensure_running()
        if self._warm_up is None and not self.scorer.ready.is_set():
            self._warm_up = self.batcher.run_in_model_thread(self.scorer.warm_up)

    async def stop(self) -> None:
        await self.batcher.stop()

    @property
    def readiness(self) -> tuple[bool, str, str | None]:
        """(ready, status, why not)."""
        if self.scorer.ready.is_set():
            return True, "ready", None
        if self.scorer.failure:
            return False, "failed", self.scorer.failure
        return False, "warming up", "the model is loading and scoring a first meme"

    async def score(self, requests: Sequence[ScoreRequest], deadline: float) -> list[dict | Exception]:
        """Each meme's answer or ItemError (any other exception: a failure of the server); QueueFull and
        DeadlineExceeded concern the whole request."""
        self.start()
        jobs = self.batcher.submit(requests)
        return await self.batcher.results(jobs, deadline)

    def deadline(self) -> float:
        return time.monotonic() + self.settings.timeout_s

    def count(self, outcomes: Sequence[object]) -> None:
        for outcome in outcomes:
            status = outcome.status if isinstance(outcome, ItemError) else 500 if isinstance(outcome, Exception) else 200
            self.metrics.on_meme(status)
