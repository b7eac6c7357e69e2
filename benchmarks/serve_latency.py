"""Single-meme latency of `memecat serve`: 200 sequential requests from a local client, p50/p95.

    python benchmarks/serve_latency.py --model runs/main/model [--requests 200]

Starts the server on 127.0.0.1 (a free port), sends the SemEval dev memes in turn, stops the server.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from memecat.tasks import get_task, load_split


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "memecat.cli", "serve", "--model", str(args.model),
                               "--port", str(port)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(600):  # wait up to 60 s for start-up
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            memes = load_split(get_task("semeval-t6"), "dev")
            latencies = []
            for i in range(args.requests + 5):
                meme = memes[i % len(memes)]
                files = {"image": (meme.image.name, meme.image.read_bytes())}
                started = time.perf_counter()
                response = client.post(f"{base}/v1/predict", files=files, data={"text": meme.text})
                response.raise_for_status()
                if i >= 5:  # the first requests warm up the model's kernels
                    latencies.append((time.perf_counter() - started) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"{len(latencies)} requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
