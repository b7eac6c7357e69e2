"""Prediction throughput side by side, in one run: each stage of the feature pipeline alone, `memecat predict`
against the naive per-meme loop of the same model, warm and cold.

    python benchmarks/throughput.py --model runs/main/model --memes 200      # the SemEval-2021 test split
    python benchmarks/throughput.py --model runs/main/model --memes 5000     # shared images under new ids

- stages alone (model loaded, sessions open, features not cached): reading + hashing + decoding + preprocessing
  the images on one thread and on the decoding pool; the image encoder on preprocessed pixels; the text encoder
  on texts batched as the pipeline batches them (by token count) and, for reference, 32 a batch in input
  order padded to the longest; the probe's own work (n-grams, TF-IDF, the products) on encoder features.
- warm: model loaded, empty feature cache: `model.predict` on 64 memes a call (what `memecat predict` does)
  against the naive loop, `model.predict([meme])` per meme (benchmarks/naive_predict.py).
- cold: a new process under /usr/bin/time -v with an empty feature cache (ONNX exports already made):
  `memecat predict` against `python benchmarks/naive_predict.py`; wall time and peak memory from time -v; and
  `memecat predict --image --text` of the first meme alone (start-up, imports, model load, one prediction).

5,000 memes: the 4,494 images of SemEval-2021 and Harm-C, the first 506 again with a byte appended after the
image data (a new cache key, the same pixels), each with a distinct text of SemEval-2021, Harm-C or
SemEval-2024 Task 4. Stages alone use the first 1,000 of them. Every figure is the median of --repeats runs
with the range; CPU time (user + system) per meme is reported too, as it depends less on what else the
machine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 64  # memes per model.predict call, as `memecat predict --batch-size` defaults
STAGE_MEMES = 1000


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], object], count: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), cpu_seconds()
    fn()
    wall = time.perf_counter() - started
    return {"per_s": count / wall, "cpu_ms": (cpu_seconds() - cpu) / count * 1000, "wall_s": wall}


_MADE: list[Path] = []


def empty_cache(exports: Path) -> Path:
    """A new feature cache folder that reuses the machine's ONNX exports; removed by `clean_up`."""
    folder = Path(tempfile.mkdtemp(prefix="memecat-bench-"))
    (folder / "onnx").symlink_to(exports, target_is_directory=True)
    _MADE.append(folder)
    return folder


def clean_up() -> None:
    """Remove the caches made so far (5,000 memes fill ~750 MB each), so no run reads another's features."""
    while _MADE:
        shutil.rmtree(_MADE.pop(), ignore_errors=True)


# --- the memes -----------------------------------------------------------------------------------------
def build_memes(data_root: Path, count: int, folder: Path) -> Path:
    """`folder`/memes.jsonl with `count` memes over the shared images (copied; repeats made distinct)."""
    from memecat.tasks import get_task, load_split

    images, texts = [], []
    for split in ("train", "dev", "test"):
        for meme in load_split(get_task("semeval-t6"), split, data_root):
            images.append(meme.image)
            texts.append(meme.text)
    for split in ("train", "val", "test"):
        for line in (data_root / "harm-c" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            images.append(data_root / "harm-c" / "images" / row["image"])
            texts.append(row["text"])
    texts += [row["text"] for row in json.loads((data_root / "semeval2024-task4" / "train.json").read_text())]
    texts = list(dict.fromkeys(text for text in texts if text.strip()))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        source = images[index % len(images)]
        name = f"m{index:05d}{source.suffix}"
        data = source.read_bytes()
        if index >= len(images):  # decoders stop at the image's end marker: same pixels, new bytes
            data += f"memecat-copy-{index}".encode()
        (folder / "images" / name).write_bytes(data)
        rows.append({"id": f"m{index:05d}", "text": texts[index % len(texts)], "image": f"images/{name}"})
    path = folder / "memes.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- stages alone --------------------------------------------------------------------------------------
def stages(model, memes, exports: Path) -> dict[str, dict[str, float]]:
    from memecat.encoders.cache import FeatureCache, content_hash
    from memecat.features import _DECODE_WORKERS, IMAGE_BATCH, TEXT_BATCH_TOKENS, decode_image, token_batches

    features = model.features.with_cache(FeatureCache(empty_cache(exports)))
    image, text = features.frozen("image"), features.frozen("text")
    with_image = [m for m in memes if m.has_image]
    pre = image.preprocessing

    def load(meme):
        data = meme.image.read_bytes()
        content_hash(data)
        return pre.normalise(pre.crop(decode_image(meme, data)))

    out = {"decode + preprocess, one thread": timed(lambda: [load(m) for m in with_image], len(with_image))}
    with ThreadPoolExecutor(_DECODE_WORKERS) as pool:
        out[f"decode + preprocess, {_DECODE_WORKERS} threads"] = timed(
            lambda: list(pool.map(load, with_image)), len(with_image))
    pixels = np.stack([load(m) for m in with_image])
    image.run(pixels[:IMAGE_BATCH])  # first call: session and kernels
    out[f"image encoder ({image.name}, {IMAGE_BATCH} a batch)"] = timed(
        lambda: [image.run(pixels[i : i + IMAGE_BATCH]) for i in range(0, len(pixels), IMAGE_BATCH)], len(pixels))

    texts = [m.text for m in memes]
    tokenizer = text.tokenizer
    text.run(*tokenizer(texts[:4]))

    def by_length():
        ids = tokenizer.ids(texts)
        for batch in token_batches([len(row) for row in ids], TEXT_BATCH_TOKENS, features.batch_size):
            text.run(*tokenizer.pad([ids[i] for i in batch]))

    def in_order():
        for i in range(0, len(texts), 32):
            text.run(*tokenizer(texts[i : i + 32]))

    lengths = [len(row) for row in tokenizer.ids(texts)]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in token_batches(lengths, TEXT_BATCH_TOKENS, 32))
    order = sum(min(32, len(texts) - i) * max(lengths[i : i + 32]) for i in range(0, len(texts), 32))
    out[f"text encoder ({text.name}, by token count, {padded / sum(lengths):.2f}x real tokens)"] = timed(
        by_length, len(texts))
    out[f"text encoder, 32 a batch in input order ({order / sum(lengths):.2f}x real tokens)"] = timed(
        in_order, len(texts))

    arrays = features.encode_arrays(memes, pooled_only=True)

    def probe_head():
        raw = {view: model.hasher(view).transform(texts) for view in ("char-ngrams", "word-ngrams")}
        raw.update({"text-encoder": arrays["text_pooled"], "image-encoder": arrays["image_pooled"]})
        present = {view: np.ones(len(memes), bool) for view in raw}
        present["image-encoder"] = arrays["image_present"]
        model._proba(model.scaled(raw), present, model.weights)

    if model.model_type == "linear-probe":
        out["the probe's own work (n-grams, TF-IDF, products)"] = timed(probe_head, len(memes))
    return out


# --- warm: in this process -------------------------------------------------------------------------------
def warm_predict(model, memes, exports: Path) -> dict[str, float]:
    from memecat.encoders.cache import FeatureCache

    base = model.features
    model.features = base.with_cache(FeatureCache(empty_cache(exports)))
    model.predict(memes[:8])  # sessions open, kernels warm
    model.features = base.with_cache(FeatureCache(empty_cache(exports)))
    result = timed(lambda: [model.predict(memes[i : i + CHUNK]) for i in range(0, len(memes), CHUNK)], len(memes))
    model.features = base
    return result


# --- cold: new processes -----------------------------------------------------------------------------------
def run_timed(command: list[str], cache: Path) -> dict[str, float]:
    """Wall time and peak memory of a new process from /usr/bin/time -v, with MEMECAT_CACHE=cache."""
    before = cpu_seconds(resource.RUSAGE_CHILDREN)
    done = subprocess.run(["/usr/bin/time", "-v", *command], env={**os.environ, "MEMECAT_CACHE": str(cache)},
                          capture_output=True, text=True, check=True, cwd=ROOT)
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    wall = sum(float(part) * 60**power for power, part in enumerate(reversed(clock.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"wall_s": wall, "rss_mb": rss / 1024, "cpu_s": cpu_seconds(resource.RUSAGE_CHILDREN) - before,
            "stdout": done.stdout}


def cold_predict(model_dir: Path, source: list[str], count: int, exports: Path) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="memecat-bench-out-")) / "predictions.jsonl"
    _MADE.append(out.parent)
    memecat = str(Path(sys.executable).with_name("memecat"))
    run = run_timed([memecat, "predict", "--model", str(model_dir), *source, "--out", str(out)], empty_cache(exports))
    return {"per_s": count / run["wall_s"], "cpu_ms": run["cpu_s"] / count * 1000, "wall_s": run["wall_s"],
            "rss_mb": run["rss_mb"]}


def one_meme(model_dir: Path, meme, exports: Path) -> dict[str, float]:
    """`memecat predict --image --text` of one meme in a new process: empty feature cache, exports on record."""
    memecat = str(Path(sys.executable).with_name("memecat"))
    run = run_timed([memecat, "predict", "--model", str(model_dir), "--image", str(meme.image), "--text", meme.text],
                    empty_cache(exports))
    return {"wall_s": run["wall_s"], "rss_mb": run["rss_mb"], "cpu_ms": run["cpu_s"] * 1000}


def naive(model_dir: Path, source: list[str], count: int, exports: Path) -> tuple[dict, dict]:
    """(warm, cold) of one naive process: its own loop time, and its whole wall time."""
    script = str(ROOT / "benchmarks" / "naive_predict.py")
    run = run_timed([sys.executable, script, "--model", str(model_dir), *source, "--json"], empty_cache(exports))
    inner = json.loads(run["stdout"].strip().splitlines()[-1])
    warm = {"per_s": inner["warm_memes_per_s"], "wall_s": inner["loop_s"]}
    cold = {"per_s": count / run["wall_s"], "cpu_ms": run["cpu_s"] / count * 1000, "wall_s": run["wall_s"],
            "rss_mb": run["rss_mb"]}
    return warm, cold


def summary(runs: list[dict[str, float]]) -> dict[str, list[float] | float]:
    keys = runs[0].keys()
    return {key: {"median": statistics.median(r[key] for r in runs), "runs": [r[key] for r in runs]} for key in keys}


def cell(figures: dict, key: str = "per_s", digits: int = 1) -> str:
    entry = figures.get(key)
    if entry is None:
        return "–"
    runs = entry["runs"]
    return f"{entry['median']:.{digits}f} ({min(runs):.{digits}f}-{max(runs):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "main" / "model")
    parser.add_argument("--memes", type=int, default=200, help="200: the SemEval-2021 test split; more: built")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: stages,warm,naive,cold,one")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default benchmarks/results/)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from memecat.data.readers import read_dataset
    from memecat.encoders.cache import default_cache_dir
    from memecat.models.base import load_model
    from memecat.tasks import load_split, resolve_data_root

    model_dir = args.model.resolve()
    model = load_model(model_dir)
    data_root = resolve_data_root(args.data_root)
    work = None
    if args.memes == 200:
        memes = load_split(model.task, "test", data_root)
        source = ["--split", "test", "--data-root", str(data_root)]
    else:
        work = Path(tempfile.mkdtemp(prefix="memecat-bench-memes-"))
        dataset = build_memes(data_root, args.memes, work)
        memes = read_dataset(dataset)
        source = ["--input", str(dataset)]
    count = len(memes)
    exports = default_cache_dir() / "onnx"
    model.features.frozen("image")  # exports once if this machine has none yet; never timed
    model.features.frozen("text")

    results: dict[str, dict] = {"memes": count, "cores": os.cpu_count(), "load_average": os.getloadavg()}
    runs: dict[str, list] = {}
    for repeat in range(args.repeats):
        print(f"run {repeat + 1} of {args.repeats}", file=sys.stderr)
        if "stages" not in skip:
            for name, figures in stages(model, memes[:STAGE_MEMES], exports).items():
                runs.setdefault(f"stage: {name}", []).append(figures)
            clean_up()
        if "warm" not in skip:
            runs.setdefault("warm: predict, 64 a call", []).append(warm_predict(model, memes, exports))
            clean_up()
        if "naive" not in skip:
            warm, cold = naive(model_dir, source, count, exports)
            runs.setdefault("warm: naive loop", []).append(warm)
            runs.setdefault("cold: naive loop", []).append(cold)
            clean_up()
        if "cold" not in skip:
            runs.setdefault("cold: memecat predict", []).append(cold_predict(model_dir, source, count, exports))
            clean_up()
        if "one" not in skip:
            runs.setdefault("cold: memecat predict, one meme", []).append(one_meme(model_dir, memes[0], exports))
            clean_up()
    results["figures"] = {name: summary(entries) for name, entries in runs.items()}
    out = args.out or ROOT / "benchmarks" / "results" / f"throughput_{count}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"| {count} memes | memes/s | CPU ms a meme | wall s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, figures in results["figures"].items():
        print(f"| {name} | {cell(figures)} | {cell(figures, 'cpu_ms')} | {cell(figures, 'wall_s')} | "
              f"{cell(figures, 'rss_mb', 0)} |")
    figures = results["figures"]
    for kind in ("warm", "cold"):
        fast, slow = figures.get(f"{kind}: {'predict, 64 a call' if kind == 'warm' else 'memecat predict'}"), \
            figures.get(f"{kind}: naive loop")
        if fast and slow:
            print(f"{kind}: {fast['per_s']['median'] / slow['per_s']['median']:.1f}x the naive loop")
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
