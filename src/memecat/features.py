"""Frozen-encoder features for a list of memes: computed once, stored in the FeatureCache, stacked in order.

Values are always the stored ones (grids and token states in float16), so a warm cache returns exactly
what a cold run returned.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.encoders.base import GRID_TOKENS, ImageEncoder, TextEncoder
from memecat.encoders.cache import FeatureCache, content_hash
from memecat.encoders.runtime import frozen_runner
from memecat.errors import DataError

T = TypeVar("T")
R = TypeVar("R")

# Decoding threads: enough to keep PNG/JPEG decoding off the encoder's critical path on a small machine.
_DECODE_WORKERS = max(2, min(4, os.cpu_count() or 1))


def _progress(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="meme", disable=not (enabled and sys.stderr.isatty()))


def _prefetched(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T], size: int
) -> Iterator[list[R]]:
    """fn over items, chunk by chunk; the next chunk runs in `pool` while the caller works on this one."""
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    pending = [pool.submit(fn, item) for item in chunks[0]] if chunks else []
    for index in range(len(chunks)):
        current = pending
        pending = [pool.submit(fn, item) for item in chunks[index + 1]] if index + 1 < len(chunks) else []
        yield [future.result() for future in current]


@dataclass
class _Loaded:
    index: int
    digest: str
    entry: dict[str, torch.Tensor] | None  # cache hit
    pixels: torch.Tensor | None  # cache miss: preprocessed image


def _image_entry(grid: torch.Tensor, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"grid": grid.to(torch.float16).clone(), "pooled": pooled.float().clone()}


def _fits_image(entry: dict[str, torch.Tensor] | None, dim: int) -> bool:
    if entry is None or not {"grid", "pooled"} <= entry.keys():
        return False
    return entry["grid"].shape == (GRID_TOKENS, dim) and entry["pooled"].shape == (dim,)


def _read_image(meme: Meme) -> bytes:
    try:
        return meme.image.read_bytes()
    except OSError as exc:
        raise DataError(
            meme.image, f"cannot read image ({exc.strerror or exc})", record_id=meme.id
        ) from None


def image_features(
    memes: Sequence[Meme],
    encoder: ImageEncoder,
    cache: FeatureCache,
    batch_size: int = 32,
    progress: bool = True,
    grids: bool = True,
) -> dict[str, torch.Tensor]:
    """{"grid": float32 [N, 49, d], "pooled": float32 [N, d], "present": bool [N]} in the order of `memes`;
    only misses are encoded. A meme without an image gets zeros and `present` False. `grids=False` leaves out
    the grids (a pooled-feature model needs none, and they are 250 KB a meme)."""
    encoder.fingerprint()  # hash the weights once, here, not in every worker
    run = frozen_runner(encoder)
    grid = torch.zeros(len(memes), GRID_TOKENS, encoder.dim) if grids else None
    pooled = torch.zeros(len(memes), encoder.dim)
    present = torch.tensor([meme.image is not None for meme in memes], dtype=torch.bool)
    with_image = [index for index, meme in enumerate(memes) if meme.image is not None]

    def load(index: int) -> _Loaded:
        meme = memes[index]
        data = _read_image(meme)
        digest = content_hash(data)
        entry = cache.get(encoder, digest)
        if _fits_image(entry, encoder.dim):
            return _Loaded(index, digest, entry, None)
        try:
            image = open_image(data, name=str(meme.image))
        except DataError as exc:
            raise DataError(exc.path, exc.problem, record_id=meme.id) from None
        return _Loaded(index, digest, None, encoder.preprocess([image])[0])

    def store(index: int, entry: dict[str, torch.Tensor]) -> None:
        if grid is not None:
            grid[index] = entry["grid"]
        pooled[index] = entry["pooled"]

    with ThreadPoolExecutor(_DECODE_WORKERS) as pool, _progress(len(with_image), encoder.name, progress) as bar:
        for chunk in _prefetched(pool, load, with_image, batch_size):
            misses = [item for item in chunk if item.entry is None]
            if misses:
                features = run(torch.stack([item.pixels for item in misses]))
                for row, item in enumerate(misses):
                    item.entry = _image_entry(features.grid[row], features.pooled[row])
                    cache.put(encoder, item.digest, item.entry)
            for item in chunk:
                store(item.index, item.entry)
            bar.update(len(chunk))
    return {"pooled": pooled, "present": present, **({"grid": grid} if grid is not None else {})}


def _fits_text(entry: dict[str, torch.Tensor] | None, dim: int) -> bool:
    if entry is None or not {"tokens", "pooled", "input_ids"} <= entry.keys():
        return False
    length = entry["input_ids"].shape[0]
    return entry["tokens"].shape == (length, dim) and entry["pooled"].shape == (dim,) and length > 0


def text_features(
    memes: Sequence[Meme],
    encoder: TextEncoder,
    cache: FeatureCache,
    batch_size: int = 32,
    progress: bool = True,
    tokens: bool = True,
) -> dict[str, torch.Tensor]:
    """Token features of each meme's text, right-padded to the longest: {"tokens": float32 [N, T, d],
    "mask": bool [N, T], "pooled": float32 [N, d], "input_ids": int64 [N, T]}; only misses are encoded.
    `tokens=False` gives {"pooled"} alone."""
    run = frozen_runner(encoder)
    digests = [content_hash(meme.text) for meme in memes]
    entries: dict[str, dict[str, torch.Tensor]] = {}
    texts: dict[str, str] = {}  # misses, one per distinct text
    for meme, digest in zip(memes, digests):
        if digest in entries or digest in texts:
            continue
        entry = cache.get(encoder, digest)
        if _fits_text(entry, encoder.dim):
            entries[digest] = entry
        else:
            texts[digest] = meme.text

    with _progress(len(memes), encoder.name, progress) as bar:
        bar.update(len(memes) - len(texts))
        todo = sorted(texts, key=lambda digest: len(texts[digest]))  # similar lengths batch with less padding
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            inputs = encoder.tokenize([texts[digest] for digest in batch])
            features = run(inputs["input_ids"], inputs["attention_mask"])
            for row, digest in enumerate(batch):
                real = features.mask[row]
                entry = {
                    "tokens": features.tokens[row][real].to(torch.float16).clone(),
                    "pooled": features.pooled[row].float().clone(),
                    "input_ids": inputs["input_ids"][row][real].long().clone(),
                }
                cache.put(encoder, digest, entry)
                entries[digest] = entry
            bar.update(len(batch))

    if not tokens:
        return {"pooled": torch.stack([entries[digest]["pooled"] for digest in digests]).float()
                if digests else torch.empty(0, encoder.dim)}
    return _stack_text([entries[digest] for digest in digests], encoder)


def _stack_text(entries: list[dict[str, torch.Tensor]], encoder: TextEncoder) -> dict[str, torch.Tensor]:
    count = len(entries)
    longest = max((entry["input_ids"].shape[0] for entry in entries), default=0)
    tokens = torch.zeros(count, longest, encoder.dim)
    mask = torch.zeros(count, longest, dtype=torch.bool)
    input_ids = torch.full((count, longest), encoder.pad_token_id, dtype=torch.long)
    pooled = torch.empty(count, encoder.dim)
    for row, entry in enumerate(entries):
        length = entry["input_ids"].shape[0]
        tokens[row, :length] = entry["tokens"]
        mask[row, :length] = True
        input_ids[row, :length] = entry["input_ids"]
        pooled[row] = entry["pooled"]
    return {"tokens": tokens, "mask": mask, "pooled": pooled, "input_ids": input_ids}
