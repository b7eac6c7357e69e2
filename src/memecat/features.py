"""The one feature path: memes in, the tensors models read out.

A `FeatureExtractor` holds a text encoder, an image encoder and a feature cache, all chosen by the caller.
Frozen-encoder outputs are computed once per distinct text or image, stored in the cache (grids and token
states in float16) and always read back at the stored precision, so a warm cache returns exactly what a cold
run returned. Images come as a path, as bytes or as a PIL image; a meme without one gets zeros and
`image_present` False.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from memecat.data.images import open_image, to_rgb
from memecat.data.meme import Meme
from memecat.encoders.base import GRID_TOKENS, Encoder, ImageEncoder, TextEncoder
from memecat.encoders.cache import FeatureCache, content_hash
from memecat.encoders.runtime import frozen_runner
from memecat.errors import DataError

T = TypeVar("T")
R = TypeVar("R")

# Decoding threads: enough to keep PNG/JPEG decoding off the encoder's critical path on a small machine.
_DECODE_WORKERS = max(2, min(4, os.cpu_count() or 1))


def _progress(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="meme", disable=not (enabled and sys.stderr.isatty()))


def _prefetched(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T], size: int) -> Iterator[list[R]]:
    """fn over items, chunk by chunk; the next chunk runs in `pool` while the caller works on this one."""
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    pending = [pool.submit(fn, item) for item in chunks[0]] if chunks else []
    for index in range(len(chunks)):
        current = pending
        pending = [pool.submit(fn, item) for item in chunks[index + 1]] if index + 1 < len(chunks) else []
        yield [future.result() for future in current]


def _image_key_and_source(meme: Meme) -> tuple[str, bytes | Image.Image]:
    """The cache key of a meme's image (a hash of its bytes, or of a PIL image's pixels) and what to decode."""
    image = meme.image
    if isinstance(image, Image.Image):
        return content_hash(f"{image.mode}:{image.size}".encode() + image.tobytes()), image
    if isinstance(image, Path):
        try:
            image = image.read_bytes()
        except OSError as exc:
            raise DataError(meme.image, f"cannot read image ({exc.strerror or exc})", record_id=meme.id) from None
    return content_hash(image), image


def decode_image(meme: Meme, source: bytes | Image.Image) -> Image.Image:
    """A meme's image as RGB, or a DataError naming the meme's image and the problem."""
    try:
        return to_rgb(source) if isinstance(source, Image.Image) else open_image(source, name=meme.image_name)
    except DataError as exc:
        raise DataError(exc.path, exc.problem, record_id=meme.id) from None


@dataclass
class _Loaded:
    index: int
    digest: str
    entry: dict[str, torch.Tensor] | None  # cache hit
    pixels: torch.Tensor | None  # cache miss: preprocessed image


def _fits_image(entry: dict[str, torch.Tensor] | None, dim: int) -> bool:
    if entry is None or not {"grid", "pooled"} <= entry.keys():
        return False
    return entry["grid"].shape == (GRID_TOKENS, dim) and entry["pooled"].shape == (dim,)


def _fits_text(entry: dict[str, torch.Tensor] | None, dim: int) -> bool:
    if entry is None or not {"tokens", "pooled", "input_ids"} <= entry.keys():
        return False
    length = entry["input_ids"].shape[0]
    return entry["tokens"].shape == (length, dim) and entry["pooled"].shape == (dim,) and length > 0


def _tensor(array, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array))).to(dtype)


class FeatureExtractor:
    """Turns memes into model inputs with the encoders and cache it is given.

    `runtime` "onnx" runs the frozen encoders in ONNX Runtime (exported once into the cache folder), "torch"
    in PyTorch. Encoders, their frozen parts and their runners are built once per extractor.
    """

    def __init__(self, text_encoder: TextEncoder, image_encoder: ImageEncoder, cache: FeatureCache,
                 runtime: str = "onnx", batch_size: int = 32):
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.cache = cache
        self.runtime = runtime
        self.batch_size = batch_size
        self._frozen_text: dict[int, TextEncoder] = {}
        self._runners: dict[int, Callable] = {}

    @classmethod
    def from_names(cls, text_encoder: str, image_encoder: str, cache: FeatureCache | str | Path | None = None,
                   runtime: str | None = None) -> FeatureExtractor:
        """Encoders by name, repo id or folder; the cache at `cache` (default: $MEMECAT_CACHE, else
        ~/.cache/memecat); the runtime from $MEMECAT_RUNTIME unless given (default onnx)."""
        from memecat.encoders import get_image_encoder, get_text_encoder

        if not isinstance(cache, FeatureCache):
            cache = FeatureCache(cache)
        runtime = runtime or os.environ.get("MEMECAT_RUNTIME", "onnx")
        return cls(get_text_encoder(text_encoder), get_image_encoder(image_encoder), cache, runtime)

    def with_cache(self, cache: FeatureCache) -> FeatureExtractor:
        """The same encoders, frozen parts and runners over another cache."""
        other = FeatureExtractor(self.text_encoder, self.image_encoder, cache, self.runtime, self.batch_size)
        other._frozen_text, other._runners = self._frozen_text, self._runners
        return other

    # --- the encoders' frozen parts -----------------------------------------------------------
    def frozen_text_encoder(self, finetune_layers: int = 0) -> TextEncoder:
        """The text encoder below its last `finetune_layers` layers: what the cache and the runtime serve."""
        from memecat.encoders.text import split_top

        if finetune_layers not in self._frozen_text:
            self._frozen_text[finetune_layers] = split_top(self.text_encoder, finetune_layers)[0]
        return self._frozen_text[finetune_layers]

    def trainable_text_top(self, finetune_layers: int) -> torch.nn.Module | None:
        """A fresh copy of the text encoder's last `finetune_layers` layers (None for 0), for a model to train."""
        from memecat.encoders.text import split_top

        return split_top(self.text_encoder, finetune_layers)[1]

    def runner(self, encoder: Encoder) -> Callable:
        if id(encoder) not in self._runners:
            self._runners[id(encoder)] = frozen_runner(encoder, self.cache.root / "onnx", self.runtime)
        return self._runners[id(encoder)]

    # --- features ---------------------------------------------------------------------------
    def image_features(self, memes: Sequence[Meme], grids: bool = True, progress: bool = True) -> dict[str, torch.Tensor]:
        """{"grid": float32 [N, 49, d], "pooled": float32 [N, d], "present": bool [N]} in the order of
        `memes`; only misses are encoded. `grids=False` leaves out the grids (250 KB a meme)."""
        encoder, cache = self.image_encoder, self.cache
        encoder.fingerprint()  # hash the weights once, here, not in every worker
        run = self.runner(encoder)
        grid = torch.zeros(len(memes), GRID_TOKENS, encoder.dim) if grids else None
        pooled = torch.zeros(len(memes), encoder.dim)
        present = torch.tensor([meme.has_image for meme in memes], dtype=torch.bool)
        with_image = [index for index, meme in enumerate(memes) if meme.has_image]

        def load(index: int) -> _Loaded:
            meme = memes[index]
            digest, source = _image_key_and_source(meme)
            entry = cache.get(encoder, digest)
            if _fits_image(entry, encoder.dim):
                return _Loaded(index, digest, entry, None)
            return _Loaded(index, digest, None, encoder.preprocess([decode_image(meme, source)])[0])

        with ThreadPoolExecutor(_DECODE_WORKERS) as pool, _progress(len(with_image), encoder.name, progress) as bar:
            for chunk in _prefetched(pool, load, with_image, self.batch_size):
                misses = [item for item in chunk if item.entry is None]
                if misses:
                    features = run(torch.stack([item.pixels for item in misses]))
                    for row, item in enumerate(misses):
                        item.entry = {"grid": features.grid[row].to(torch.float16).clone(),
                                      "pooled": features.pooled[row].float().clone()}
                        cache.put(encoder, item.digest, item.entry)
                for item in chunk:
                    if grid is not None:
                        grid[item.index] = item.entry["grid"]
                    pooled[item.index] = item.entry["pooled"]
                bar.update(len(chunk))
        return {"pooled": pooled, "present": present, **({"grid": grid} if grid is not None else {})}

    def text_features(self, texts: Sequence[str], finetune_layers: int = 0, tokens: bool = True,
                      progress: bool = True) -> dict[str, torch.Tensor]:
        """Token states of the frozen layers, right-padded to the longest text: {"tokens": float32 [N, T, d],
        "mask": bool [N, T], "pooled": float32 [N, d], "input_ids": int64 [N, T]}; only misses are encoded.
        `tokens=False` gives {"pooled"} alone."""
        encoder = self.frozen_text_encoder(finetune_layers)
        run = self.runner(encoder)
        digests = [content_hash(text) for text in texts]
        entries: dict[str, dict[str, torch.Tensor]] = {}
        todo: dict[str, str] = {}  # misses, one per distinct text
        for text, digest in zip(texts, digests):
            if digest in entries or digest in todo:
                continue
            entry = self.cache.get(encoder, digest)
            if _fits_text(entry, encoder.dim):
                entries[digest] = entry
            else:
                todo[digest] = text

        with _progress(len(texts), encoder.name, progress) as bar:
            bar.update(len(texts) - len(todo))
            order = sorted(todo, key=lambda digest: len(todo[digest]))  # similar lengths batch with less padding
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                inputs = encoder.tokenize([todo[digest] for digest in batch])
                features = run(inputs["input_ids"], inputs["attention_mask"])
                for row, digest in enumerate(batch):
                    real = features.mask[row]
                    entry = {"tokens": features.tokens[row][real].to(torch.float16).clone(),
                             "pooled": features.pooled[row].float().clone(),
                             "input_ids": inputs["input_ids"][row][real].long().clone()}
                    self.cache.put(encoder, digest, entry)
                    entries[digest] = entry
                bar.update(len(batch))

        if not tokens:
            return {"pooled": torch.stack([entries[d]["pooled"] for d in digests]).float()
                    if digests else torch.empty(0, encoder.dim)}
        return _stack_text([entries[d] for d in digests], encoder)

    def encode(self, memes: Sequence[Meme], finetune_layers: int = 0, pooled_only: bool = False,
               texts: Sequence[str] | None = None, progress: bool = False) -> dict[str, torch.Tensor]:
        """Model inputs for `memes`: "image_pooled", "image_present", "text_pooled", and unless `pooled_only`
        also "image_grid", "text_tokens", "text_mask" and "input_ids". `texts` replaces the memes' own."""
        image = self.image_features(memes, grids=not pooled_only, progress=progress)
        text = self.text_features([m.text for m in memes] if texts is None else texts, finetune_layers,
                                  tokens=not pooled_only, progress=progress)
        out = {"image_pooled": _tensor(image["pooled"]), "image_present": image["present"],
               "text_pooled": _tensor(text["pooled"])}
        if not pooled_only:
            out["image_grid"] = _tensor(image["grid"])
            out["text_tokens"] = _tensor(text["tokens"])
            out["text_mask"] = torch.as_tensor(text["mask"]).bool()
            out["input_ids"] = torch.as_tensor(text["input_ids"]).long()
        return out

    def mixed_image_grids(self, memes: Sequence[Meme], pairs: tuple[np.ndarray, np.ndarray], lam: float) -> torch.Tensor:
        """Grids [P, 49, d] of the pixel mixes lam * image_i + (1 - lam) * image_j (SimRe's recreated memes),
        through the cache under a key of both images and lam."""
        encoder = self.image_encoder
        keys = [_image_key_and_source(m)[0] for m in memes]
        out = torch.empty(len(pairs[0]), GRID_TOKENS, encoder.dim)
        todo = []
        for row, (i, j) in enumerate(zip(*pairs)):
            key = content_hash(f"simre-mix:{keys[i]}:{keys[j]}:{lam}")
            entry = self.cache.get(encoder, key)
            if entry is not None and entry.get("grid") is not None and entry["grid"].shape == out.shape[1:]:
                out[row] = entry["grid"].float()
            else:
                todo.append((row, i, j, key))

        def pixels(index: int) -> torch.Tensor:
            return encoder.preprocess([decode_image(memes[index], _image_key_and_source(memes[index])[1])])[0]

        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            mixed = torch.stack([lam * pixels(i) + (1 - lam) * pixels(j) for _, i, j, _ in chunk])
            for (row, _, _, key), grid in zip(chunk, self.runner(encoder)(mixed).grid):
                entry = {"grid": grid.to(torch.float16).clone()}
                self.cache.put(encoder, key, entry)
                out[row] = entry["grid"].float()  # the stored precision, so warm and cold runs agree
        return out


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

