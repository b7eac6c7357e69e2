"""Load test of `memecat serve` with locust (headless): 1, 8 and 32 concurrent clients, bounded in time and count.

    python benchmarks/serve_load.py --model runs/main/model [--clients 1,8,32] [--seconds 20] [--max-requests 2000]

Starts `memecat serve` on 127.0.0.1 (a free port, default settings), waits for /readyz, then for each client
count runs locust in its own process (benchmarks/serve_locustfile.py): the clients post distinct SemEval memes
(train, dev and test images with their texts, each once before any repeats, so the service's feature cache
rarely helps) back to back while one probe asks /healthz ten times a second. Prints a Markdown table
(throughput, latency percentiles, errors, /healthz latency, the server's mean batch size) and writes it as
JSON to benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from memecat.tasks import get_task, load_split

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "serve_locustfile.py"
RESULTS = HERE / "results" / "serve_load.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_memes(folder: Path) -> Path:
    task = get_task("semeval-t6")
    memes = [m for split in ("train", "dev", "test") for m in load_split(task, split) if m.image is not None]
    path = folder / "memes.json"
    path.write_text(json.dumps([{"image": str(m.image), "text": m.text} for m in memes]), encoding="utf-8")
    print(f"{len(memes)} distinct memes to send", file=sys.stderr)
    return path


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "memecat.cli", "serve", "--model", str(model), "--port", str(port),
               "--log-level", "warning", *extra]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"memecat serve exited with {server.returncode}")
            try:
                if client.get("/readyz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("memecat serve was not ready within 300 s")


def scrape(base: str) -> dict[str, float]:
    """The server's batch count and size sum, to tell how many memes a model call scored on average."""
    text = httpx.get(f"{base}/metrics").text
    out = {}
    for name in ("memecat_batch_size_sum", "memecat_batch_size_count"):
        match = re.search(rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.MULTILINE)
        out[name] = float(match.group(1)) if match else 0.0
    return out


def run_locust(base: str, clients: int, seconds: int, max_requests: int, memes: Path, prefix: Path) -> None:
    env = {**os.environ, "MEMECAT_LOAD_MEMES": str(memes), "MEMECAT_LOAD_MAX_REQUESTS": str(max_requests)}
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base,
               "-u", str(clients + 1), "-r", str(clients + 1), "-t", f"{seconds}s", "--stop-timeout", "30",
               "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL)


def read_stats(prefix: Path) -> dict[str, dict]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    with open(f"{prefix}_failures.csv", newline="") as handle:
        failures = list(csv.DictReader(handle))
    out = {}
    for name in ("POST /v1/predict", "GET /healthz"):
        row = rows.get(name)
        if row is None:
            continue
        errors = {f["Error"]: int(f["Occurrences"]) for f in failures if f["Name"] == name}
        out[name] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                     "per_s": float(row["Requests/s"]), "p50": float(row["50%"]), "p95": float(row["95%"]),
                     "p99": float(row["99%"]), "errors": errors}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/main/model"))
    parser.add_argument("--clients", default="1,8,32", help="comma-separated client counts, one run each")
    parser.add_argument("--seconds", type=int, default=20, help="length of each run")
    parser.add_argument("--max-requests", type=int, default=2000, help="predictions per run at most")
    parser.add_argument("--serve-option", action="append", default=[],
                        help="an extra `memecat serve` option, e.g. --serve-option=--max-batch-size=8")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        memes = write_memes(Path(tmp))
        server = start_server(args.model, port, args.serve_option)
        try:
            for clients in [int(c) for c in args.clients.split(",")]:
                before = scrape(base)
                run_locust(base, clients, args.seconds, args.max_requests, memes, Path(tmp) / f"c{clients}")
                after = scrape(base)
                stats = read_stats(Path(tmp) / f"c{clients}")
                batches = after["memecat_batch_size_count"] - before["memecat_batch_size_count"]
                scored = after["memecat_batch_size_sum"] - before["memecat_batch_size_sum"]
                rows.append({"clients": clients, **stats, "mean_batch": scored / batches if batches else 0.0})
        finally:
            server.terminate()
            server.wait(timeout=60)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"model": str(args.model), "seconds": args.seconds, "runs": rows}, indent=1) + "\n")
    print("| clients | predictions | throughput (memes/s) | p50 | p95 | p99 (ms) | errors | mean batch | "
          "/healthz p50 / p99 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        p, h = row["POST /v1/predict"], row.get("GET /healthz", {})
        errors = ", ".join(f"{k}: {v}" for k, v in p["errors"].items()) or "0"
        print(f"| {row['clients']} | {p['requests']} | {p['per_s']:.1f} | {p['p50']:.0f} | {p['p95']:.0f} | "
              f"{p['p99']:.0f} | {errors} | {row['mean_batch']:.1f} | {h.get('p50', 0):.0f} / {h.get('p99', 0):.0f} |")


if __name__ == "__main__":
    main()
