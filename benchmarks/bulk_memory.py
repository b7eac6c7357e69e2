"""Peak memory of a bulk `predict` job against its size: run it for 1,000 and for 100,000 memes and compare.

    MEMECAT_CACHE=/tmp/bulk/cache /usr/bin/time -v python benchmarks/bulk_memory.py \
        --model runs/main/model --memes 100000 --work /tmp/bulk

The memes are the shared SemEval-2021 train and dev memes reused under new ids (`bulk_data.py`). The script
prints the job's summary and the process's peak resident memory (also what `/usr/bin/time -v` calls "Maximum
resident set size").
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from bulk_data import synthetic_memes

from memecat.predict.job import predict_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--memes", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/memecat-bulk"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--format", default="jsonl", choices=["jsonl", "json", "parquet", "csv"])
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()
    source = synthetic_memes(args.work, args.memes, args.data_root)
    out = args.work / f"pred-{args.memes}.{args.format}"
    started = time.perf_counter()
    summary = predict_dataset(args.model, source, out, resume=False, batch_size=args.batch_size, progress=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(summary.line())
    print(f"memes={args.memes} seconds={time.perf_counter() - started:.1f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
