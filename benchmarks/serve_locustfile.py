"""Locust users for benchmarks/serve_load.py (run by it; locust's gevent patching stays in locust's process).

Clients post memes to /v1/predict back to back (a closed loop: each waits for its answer, then sends the next),
each meme once before any repeats; one probe asks /healthz ten times a second. The memes come from the JSON
list in $MEMECAT_LOAD_MEMES ([{"image": path, "text": ...}]); the run stops after $MEMECAT_LOAD_MAX_REQUESTS
predictions, or at --run-time.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import HttpUser, constant, task

MEMES = json.loads(Path(os.environ["MEMECAT_LOAD_MEMES"]).read_text(encoding="utf-8"))
PAYLOADS = [(Path(m["image"]).name, Path(m["image"]).read_bytes(), m["text"]) for m in MEMES]
MAX_REQUESTS = int(os.environ.get("MEMECAT_LOAD_MAX_REQUESTS", "0"))
_sent = itertools.count()


class MemeClient(HttpUser):
    wait_time = constant(0)

    @task
    def predict(self) -> None:
        n = next(_sent)
        if MAX_REQUESTS and n >= MAX_REQUESTS:
            self.environment.runner.quit()
            return
        name, image, text = PAYLOADS[n % len(PAYLOADS)]
        with self.client.post("/v1/predict", files={"image": (name, image)}, data={"text": text},
                              name="POST /v1/predict", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


class HealthProbe(HttpUser):
    fixed_count = 1  # one probe, whatever the number of clients
    wait_time = constant(0.1)

    @task
    def healthz(self) -> None:
        with self.client.get("/healthz", name="GET /healthz", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
