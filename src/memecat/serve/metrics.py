"""Prometheus metrics of one app: requests by route and status, latencies, queue depth, batch sizes, the model.

Each app has its own registry (several apps in one process, as in tests, never collide); the process
collectors add memory, CPU and open files.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    def __init__(self, identity: dict[str, str], depth: Callable[[], int], ready: Callable[[], bool]):
        disable_created_metrics()  # no *_created series: creation times of counters say nothing to a dashboard
        self.registry = registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=registry)
        platform_collector.PlatformCollector(registry=registry)
        gc_collector.GCCollector(registry=registry)
        model_id = identity["model_id"]
        Info("memecat_model", "The served model", registry=registry).info(identity)
        self.requests = Counter("memecat_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("memecat_http_request_duration_seconds", "Time from request to response, by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        queue = Gauge("memecat_queue_depth", "Memes waiting for the model", ["model_id"], registry=registry)
        queue.labels(model_id).set_function(depth)
        ready_gauge = Gauge("memecat_ready", "1 once the model is loaded and warmed up", ["model_id"],
                            registry=registry)
        ready_gauge.labels(model_id).set_function(lambda: float(ready()))
        self.batch_size = Histogram("memecat_batch_size", "Memes per model call", ["model_id"],
                                    buckets=BATCH_BUCKETS, registry=registry).labels(model_id)
        self.batch_seconds = Histogram("memecat_batch_duration_seconds", "Time of one model call", ["model_id"],
                                       buckets=LATENCY_BUCKETS, registry=registry).labels(model_id)
        self.memes = Counter("memecat_memes", "Memes answered, by status: 200, or the meme's own error (413, 415, "
                             "422, 500)",
                             ["model_id", "status"], registry=registry)
        self.rejected = Counter("memecat_rejected", "Requests turned away: queue_full (503) or timeout (504)",
                                ["model_id", "reason"], registry=registry)
        self.model_id = model_id

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def on_reject(self, reason: str) -> None:
        self.rejected.labels(self.model_id, reason).inc()

    def on_meme(self, status: int) -> None:
        self.memes.labels(self.model_id, str(status)).inc()

    def scrape(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request under its route's template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Callable[[], list]):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def route_of(self, scope: Scope) -> str:
        for route in self.routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", "other") or "other"
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route, method = self.route_of(scope), scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)
