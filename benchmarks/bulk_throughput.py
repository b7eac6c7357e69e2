"""Bulk prediction throughput: the local engine against Ray with 1 and 2 workers, on one split.

    python benchmarks/bulk_throughput.py --model runs/main/model --split test --runs local,ray:1,ray:2

Each run is a fresh process with an empty feature cache (the exported ONNX encoders copied in, so no run pays
for the export), so every meme goes through the encoders. Reported: the whole process's wall time (imports,
model loading, Ray's start), the job's own time, and the steady rate from the first finished batch to the last.
All runs must write the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(args, run: str, out: Path) -> dict:
    """One run, in this (fresh) process."""
    from memecat.models.base import read_model_metadata
    from memecat.predict.inputs import split_source
    from memecat.predict.job import predict_dataset
    from memecat.predict.journal import Journal

    stamps: list[tuple[float, int]] = []
    write = Journal.write

    def timed(self, rows, explain):
        stamps.append((time.perf_counter(), len(rows)))
        return write(self, rows, explain)

    Journal.write = timed
    engine, _, workers = run.partition(":")
    source = split_source(read_model_metadata(args.model)["task"], args.split, args.data_root)
    started = time.perf_counter()
    summary = predict_dataset(args.model, source, out, engine=engine, workers=int(workers) if workers else None,
                              batch_size=args.batch_size, resume=False, progress=False)
    steady = sum(n for _, n in stamps[1:]) / (stamps[-1][0] - stamps[0][0]) if len(stamps) > 2 else None
    return {"run": run, "memes": summary.records, "job_seconds": round(time.perf_counter() - started, 1),
            "memes_per_second": round(summary.records / (time.perf_counter() - started), 1),
            "steady_memes_per_second": round(steady, 1) if steady else None, "batches": len(stamps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--runs", default="local,ray:1,ray:2")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args, args.one, args.out)))
        return
    from memecat.encoders.cache import default_cache_dir

    exports = default_cache_dir() / "onnx"
    results, outputs = [], []
    with tempfile.TemporaryDirectory(prefix="memecat-bulk-") as tmp:
        for run in args.runs.split(","):
            cache = Path(tmp) / f"cache-{run.replace(':', '-')}"
            cache.mkdir()
            if exports.is_dir():
                shutil.copytree(exports, cache / "onnx")
            out = Path(tmp) / f"{run.replace(':', '-')}.jsonl"
            command = [sys.executable, __file__, "--model", str(args.model), "--split", args.split,
                       "--batch-size", str(args.batch_size), "--one", run, "--out", str(out),
                       *(["--data-root", str(args.data_root)] if args.data_root else [])]
            started = time.perf_counter()
            env = {**os.environ, "MEMECAT_CACHE": str(cache)}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["process_seconds"] = round(time.perf_counter() - started, 1)
            results.append(result)
            outputs.append(out.read_bytes())
            print(json.dumps(result), flush=True)
    print(f"same file from every run: {all(o == outputs[0] for o in outputs)}")


if __name__ == "__main__":
    main()
