"""The naive prediction loop that `memecat predict` is measured against: any model folder, `model.predict([meme])`
once per meme, an empty feature cache. Same model, same outputs; no batching, so no decoding ahead, no
encoders running side by side, and every per-call cost paid once per meme.

    python benchmarks/naive_predict.py --model runs/main/model [--split test | --input memes.jsonl] [--json]

The feature cache is a new empty folder (MEMECAT_CACHE) that reuses the machine's exported ONNX encoders, so
no export is timed; one made-up meme opens the encoders before the clock starts. Prints memes/s after the model is loaded (warm) and including the process's start-up,
imports and model load (cold, from the interpreter's start).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # as early as this process can tell: imports below count towards cold


def empty_cache_with_exports() -> Path:
    """A new feature cache folder whose onnx/ is the default cache's (exports are made once per machine)."""
    from memecat.encoders.cache import default_cache_dir

    exports = default_cache_dir() / "onnx"
    folder = Path(tempfile.mkdtemp(prefix="memecat-naive-"))
    if exports.is_dir():
        (folder / "onnx").symlink_to(exports, target_is_directory=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model folder of any type")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="test", help="a split of the model's task (default: test)")
    source.add_argument("--input", type=Path, help="a dataset file instead of a split")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ["MEMECAT_CACHE"] = str(empty_cache_with_exports())

    from PIL import Image

    from memecat.data.meme import Meme
    from memecat.data.readers import read_dataset
    from memecat.models.base import load_model
    from memecat.tasks import load_split

    model = load_model(args.model)
    memes = read_dataset(args.input) if args.input else load_split(model.task, args.split, args.data_root)
    # One made-up meme first opens the encoders' sessions, as the bulk path's measurement does.
    model.predict([Meme("warm-up", "warm up", image=Image.new("RGB", (64, 64), (90, 120, 150)))])
    loaded = time.perf_counter()
    for meme in memes:
        model.predict([meme])
    done = time.perf_counter()
    result = {"memes": len(memes), "load_s": loaded - STARTED, "loop_s": done - loaded,
              "warm_memes_per_s": len(memes) / (done - loaded), "cold_memes_per_s": len(memes) / (done - STARTED)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"naive: {len(memes)} memes, {result['warm_memes_per_s']:.1f} memes/s warm, "
          f"{result['cold_memes_per_s']:.1f} memes/s cold (with start-up and model load)", file=sys.stdout)


if __name__ == "__main__":
    main()
