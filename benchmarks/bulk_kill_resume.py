"""Kill a bulk `predict` job (kill -9) at random points, resume it each time, and count: every id exactly once,
and how much work the interruptions cost against one uninterrupted run.

    MEMECAT_CACHE=/tmp/bulk/cache python benchmarks/bulk_kill_resume.py --model runs/main/model \
        --memes 5000 --kills 3 --work /tmp/bulk

Work is what the model is handed: each job runs in a child process that logs every batch's size just before
predicting it, so a batch a kill cut short counts too. The memes are the shared SemEval-2021 train and dev memes
reused under new ids (`bulk_data.py`).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from bulk_data import synthetic_memes

from memecat.predict.journal import Journal


def child(log: Path, argv: list[str]) -> None:
    """Run `memecat predict argv`, logging each batch's size before the model sees it."""
    from memecat.cli import cli
    from memecat.predict import batch

    real = batch.Predictor.__call__

    def logged(self, items):
        with log.open("a") as f:
            f.write(f"{len(items)}\n")
        return real(self, items)

    batch.Predictor.__call__ = logged
    cli(["predict", *argv], standalone_mode=True)


def start(args, source: Path, out: Path, log: Path) -> subprocess.Popen:
    argv = ["--model", str(args.model), "--input", str(source), "--out", str(out), "--batch-size",
            str(args.batch_size), "--resume"]
    return subprocess.Popen([sys.executable, __file__, "--child", str(log), "--", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def work(log: Path) -> int:
    return sum(int(line) for line in log.read_text().split()) if log.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--memes", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/memecat-bulk"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    source = synthetic_memes(args.work, args.memes)
    batches = -(-args.memes // args.batch_size)

    # The reference: one job never stopped.
    reference, reference_log = args.work / "reference.jsonl", args.work / "reference.log"
    for path in (reference, reference_log):
        path.unlink(missing_ok=True)
    started = time.perf_counter()
    job = start(args, source, reference, reference_log)
    if job.wait() != 0:
        raise SystemExit(job.stderr.read())
    reference_seconds = time.perf_counter() - started

    # The same job killed `kills` times, each time a random number of batches further on and part-way into a
    # batch, then resumed to the end.
    out, log = args.work / "killed.jsonl", args.work / "killed.log"
    journal = Journal(out, "jsonl")
    journal.remove()
    for path in (out, log):
        path.unlink(missing_ok=True)
    kills = []
    for _ in range(args.kills):
        held = len(journal.shards()) if journal.exists() else 0
        target = rng.randint(held + 1, held + max(1, (batches - held) // (args.kills + 1)))
        before = work(log)
        job = start(args, source, out, log)
        began = time.perf_counter()
        while (len(journal.shards()) if journal.exists() else 0) < target and job.poll() is None:
            time.sleep(0.01)
        per_batch = (time.perf_counter() - began) / max(1, target - held)
        time.sleep(rng.random() * per_batch)  # somewhere inside the next batch
        job.send_signal(signal.SIGKILL)
        job.wait()
        kept = sum(1 for _ in journal.done_keys())
        kills.append({"batches_done_at_kill": len(journal.shards()), "memes_kept": kept,
                      "work_this_run": work(log) - before})
    job = start(args, source, out, log)
    if job.wait() not in (0, 1):
        raise SystemExit(job.stderr.read())

    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    expected = [json.loads(line)["id"] for line in source.read_text().splitlines()]
    report = {
        "memes": args.memes, "batch_size": args.batch_size, "kills": kills,
        "every_id_exactly_once": ids == expected, "same_file_as_uninterrupted": out.read_bytes() ==
        reference.read_bytes(),
        "work_uninterrupted": work(reference_log), "work_with_kills": work(log),
        "extra_work": work(log) - work(reference_log), "allowed_extra": args.kills * args.batch_size,
        "uninterrupted_seconds": round(reference_seconds, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[4:])
    else:
        main()
