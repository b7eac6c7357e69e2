"""The one feature path: memes in, the arrays (or tensors) models read out.

A `FeatureExtractor` holds a text encoder, an image encoder and a feature cache, all chosen by the caller.
Frozen-encoder outputs are computed once per distinct text or image, stored in the cache (grids and token
states in float16) and always read back at the stored precision, so a warm cache returns exactly what a cold
run returned. Images come as a path, as bytes or as a PIL image; a meme without one gets zeros and
`image_present` False.

The path itself is numpy, Pillow, `tokenizers` and ONNX Runtime: an encoder whose ONNX export is on record
(encoders/exports.py) runs without PyTorch, which is imported only to build an encoder the first time, to
run one in PyTorch (MEMECAT_RUNTIME=torch) and to hand neural models tensors (`encode`).

Misses are encoded as a pipeline: images are read, decoded and preprocessed by a thread pool a few batches
ahead of the image encoder, while the text encoder runs in its own thread on texts grouped by token count.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from memecat.data.images import open_image, to_rgb
from memecat.data.meme import Meme
from memecat.encoders.cache import FeatureCache, content_hash
from memecat.encoders.frozen import FrozenEncoder, FrozenImageEncoder, FrozenTextEncoder
from memecat.encoders.preprocess import GRID_TOKENS
from memecat.errors import DataError

if TYPE_CHECKING:
    import torch

    from memecat.encoders.base import ImageEncoder, TextEncoder

T = TypeVar("T")
R = TypeVar("R")

# Decoding threads: enough to keep PNG/JPEG decoding off the encoders' critical path on a small machine.
_DECODE_WORKERS = max(2, min(4, os.cpu_count() or 1))
# Images per encoder call: the encoder's speed barely depends on it, and small batches let decoding overlap
# the encoder from the first batch on and leave a short tail.
IMAGE_BATCH = 8
# Padded tokens per text encoder call. Texts are sorted by token count first, so a batch holds many short
# texts or a few long ones and is seldom padding; small batches also stay in the CPU's caches.
TEXT_BATCH_TOKENS = 512


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on a terminal (imported only then), else a context that counts nothing."""
    if not (enabled and sys.stderr.isatty()):
        return nullcontext(_Silent())
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="meme")


class _Silent:
    def update(self, count: int) -> None:
        pass


def _ordered(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T], ahead: int) -> Iterator[R]:
    """fn over items in `pool`, results in order, at most `ahead` running or waiting (bounded memory)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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
    entry: dict[str, np.ndarray] | None  # cache hit
    pixels: np.ndarray | None  # cache miss: the preprocessed image, float32 [3, H, W]


def _fits_image(entry: dict[str, np.ndarray] | None, dim: int, keys: tuple[str, ...]) -> bool:
    if entry is None or not set(keys) <= entry.keys():
        return False
    shapes = {"grid": (GRID_TOKENS, dim), "pooled": (dim,)}
    return all(entry[key].shape == shapes[key] for key in keys)


def _fits_text(entry: dict[str, np.ndarray] | None, dim: int, keys: tuple[str, ...]) -> bool:
    if entry is None or not set(keys) <= entry.keys():
        return False
    if entry["pooled"].shape != (dim,):
        return False
    if "tokens" not in keys:
        return True
    length = entry["input_ids"].shape[0]
    return entry["tokens"].shape == (length, dim) and length > 0


def token_batches(lengths: Sequence[int], max_tokens: int, max_rows: int) -> list[list[int]]:
    """Indices grouped into batches of similar token counts: by length, each batch padded to its longest text
    holding at most `max_tokens` tokens (one text alone may hold more) and `max_rows` texts."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batch and ((len(batch) + 1) * lengths[index] > max_tokens or len(batch) >= max_rows):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches


class FeatureExtractor:
    """Turns memes into model inputs with the encoders and cache it is given.

    Encoders are given as PyTorch modules or by name (registered name, hub repo id or folder); a named one is
    built only when something needs its module. `runtime` "onnx" runs the frozen encoders in ONNX Runtime
    (exported once into the cache folder), "torch" in PyTorch. Encoders, their frozen parts and their runners
    are built once per extractor and shared with `with_cache` copies.
    """

    def __init__(self, text_encoder: TextEncoder | str | None, image_encoder: ImageEncoder | str | None,
                 cache: FeatureCache, runtime: str = "onnx", batch_size: int = 32):
        self.cache = cache
        self.runtime = runtime
        self.batch_size = batch_size
        self._specs = {kind: encoder if isinstance(encoder, str) else None
                       for kind, encoder in (("text", text_encoder), ("image", image_encoder))}
        self._modules = {kind: None if isinstance(encoder, str) else encoder
                         for kind, encoder in (("text", text_encoder), ("image", image_encoder))}
        self._frozen_text: dict[int, TextEncoder] = {}
        self._frozen: dict[tuple[str, int], FrozenEncoder] = {}

    @classmethod
    def from_names(cls, text_encoder: str, image_encoder: str, cache: FeatureCache | str | Path | None = None,
                   runtime: str | None = None) -> FeatureExtractor:
        """Encoders by name, repo id or folder; the cache at `cache` (default: $MEMECAT_CACHE, else
        ~/.cache/memecat); the runtime from $MEMECAT_RUNTIME unless given (default onnx)."""
        if not isinstance(cache, FeatureCache):
            cache = FeatureCache(cache)
        runtime = runtime or os.environ.get("MEMECAT_RUNTIME", "onnx")
        return cls(text_encoder, image_encoder, cache, runtime)

    def with_cache(self, cache: FeatureCache) -> FeatureExtractor:
        """The same encoders, frozen parts and runners over another cache."""
        other = FeatureExtractor(None, None, cache, self.runtime, self.batch_size)
        other._specs, other._modules = self._specs, self._modules
        other._frozen_text, other._frozen = self._frozen_text, self._frozen
        return other

    @property
    def export_dir(self) -> Path:
        return self.cache.root / "onnx"

    # --- the encoders as PyTorch modules -------------------------------------------------------
    def _module(self, kind: str):
        if self._modules[kind] is None:
            from memecat.encoders import get_image_encoder, get_text_encoder

            get = get_text_encoder if kind == "text" else get_image_encoder
            self._modules[kind] = get(self._specs[kind])
        return self._modules[kind]

    @property
    def text_encoder(self) -> TextEncoder:
        return self._module("text")

    @property
    def image_encoder(self) -> ImageEncoder:
        return self._module("image")

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

    # --- the encoders as the feature path runs them ----------------------------------------------
    def frozen(self, kind: str, finetune_layers: int = 0) -> FrozenEncoder:
        """The frozen image encoder, or the text encoder below its last `finetune_layers` layers, ready to run:
        from the record of its ONNX export when there is one (no PyTorch), else built in PyTorch (exported and
        recorded on the way when the runtime is ONNX)."""
        key = (kind, finetune_layers)
        if key not in self._frozen:
            found = None
            spec = self._specs[kind] if finetune_layers == 0 else None
            if self.runtime == "onnx" and spec is not None and self._modules[kind] is None:
                from memecat.encoders.exports import find_export

                found = find_export(self.export_dir, kind, spec)
            if found is None:
                from memecat.encoders.runtime import frozen_encoder

                module = self.image_encoder if kind == "image" else self.frozen_text_encoder(finetune_layers)
                found = frozen_encoder(module, self.export_dir, self.runtime, spec, module.sources)
            self._frozen[key] = found
        return self._frozen[key]

    # --- features ---------------------------------------------------------------------------
    def image_features(self, memes: Sequence[Meme], grids: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
        """{"grid": float32 [N, 49, d], "pooled": float32 [N, d], "present": bool [N]} in the order of
        `memes`; only misses are encoded. `grids=False` leaves out the grids (250 KB a meme)."""
        with ThreadPoolExecutor(_DECODE_WORKERS) as pool:
            return self._image_features(memes, grids, progress, pool)

    def _image_features(self, memes: Sequence[Meme], grids: bool, progress: bool,
                        pool: ThreadPoolExecutor) -> dict[str, np.ndarray]:
        present = np.array([meme.has_image for meme in memes], dtype=bool)
        with_image = [index for index, meme in enumerate(memes) if meme.has_image]
        encoder = self.frozen("image")
        keys = ("grid", "pooled") if grids else ("pooled",)
        grid = np.zeros((len(memes), GRID_TOKENS, encoder.dim), dtype=np.float32) if grids else None
        pooled = np.zeros((len(memes), encoder.dim), dtype=np.float32)

        def load(index: int) -> _Loaded:
            meme = memes[index]
            digest, source = _image_key_and_source(meme)
            entry = self.cache.get(encoder, digest, keys)
            if _fits_image(entry, encoder.dim, keys):
                return _Loaded(index, digest, entry, None)
            pre = encoder.preprocessing
            return _Loaded(index, digest, None, pre.normalise(pre.crop(decode_image(meme, source))))

        def place(item: _Loaded) -> None:
            if grid is not None:
                grid[item.index] = item.entry["grid"]
            pooled[item.index] = item.entry["pooled"]

        batch_size = min(self.batch_size, IMAGE_BATCH)
        misses: list[_Loaded] = []

        def flush() -> None:
            features, vectors = encoder.run(np.stack([item.pixels for item in misses]))
            for row, item in enumerate(misses):
                item.entry = {"grid": features[row].astype(np.float16), "pooled": vectors[row].astype(np.float32)}
                self.cache.put(encoder, item.digest, item.entry)
                place(item)
            bar.update(len(misses))
            misses.clear()

        with _progress(len(with_image), encoder.name, progress) as bar:
            for item in _ordered(pool, load, with_image, ahead=4 * batch_size):
                if item.entry is not None:
                    place(item)
                    bar.update(1)
                    continue
                misses.append(item)
                if len(misses) >= batch_size:
                    flush()
            if misses:
                flush()
        return {"pooled": pooled, "present": present, **({"grid": grid} if grid is not None else {})}

    def text_features(self, texts: Sequence[str], finetune_layers: int = 0, tokens: bool = True,
                      progress: bool = True) -> dict[str, np.ndarray]:
        """Token states of the frozen layers, right-padded to the longest text: {"tokens": float32 [N, T, d],
        "mask": bool [N, T], "pooled": float32 [N, d], "input_ids": int64 [N, T]}; only misses are encoded.
        `tokens=False` gives {"pooled"} alone."""
        encoder = self.frozen("text", finetune_layers)
        keys = ("tokens", "pooled", "input_ids") if tokens else ("pooled",)
        digests = [content_hash(text) for text in texts]
        entries: dict[str, dict[str, np.ndarray]] = {}
        todo: dict[str, str] = {}  # misses, one per distinct text
        for text, digest in zip(texts, digests):
            if digest in entries or digest in todo:
                continue
            entry = self.cache.get(encoder, digest, keys)
            if _fits_text(entry, encoder.dim, keys):
                entries[digest] = entry
            else:
                todo[digest] = text

        with _progress(len(texts), encoder.name, progress) as bar:
            bar.update(len(texts) - len(todo))
            missing = list(todo)
            ids = encoder.tokenizer.ids([todo[digest] for digest in missing])
            for batch in token_batches([len(row) for row in ids], TEXT_BATCH_TOKENS, self.batch_size):
                input_ids, attention_mask = encoder.tokenizer.pad([ids[i] for i in batch])
                states, vectors = encoder.run(input_ids, attention_mask)
                for row, index in enumerate(batch):
                    real = attention_mask[row].astype(bool)
                    entry = {"tokens": states[row][real].astype(np.float16), "pooled": vectors[row].astype(np.float32),
                             "input_ids": input_ids[row][real]}
                    self.cache.put(encoder, missing[index], entry)
                    entries[missing[index]] = entry
                bar.update(len(batch))

        if not tokens:
            return {"pooled": np.stack([entries[d]["pooled"] for d in digests]).astype(np.float32)
                    if digests else np.zeros((0, encoder.dim), dtype=np.float32)}
        return _stack_text([entries[d] for d in digests], encoder)

    def encode_arrays(self, memes: Sequence[Meme], finetune_layers: int = 0, pooled_only: bool = False,
                      texts: Sequence[str] | None = None, progress: bool = False) -> dict[str, np.ndarray]:
        """Model inputs for `memes` as numpy arrays: "image_pooled", "image_present", "text_pooled", and unless
        `pooled_only` also "image_grid", "text_tokens", "text_mask" and "input_ids". `texts` replaces the
        memes' own. The text encoder runs in a thread of its own beside the image pipeline."""
        texts = [m.text for m in memes] if texts is None else list(texts)
        # Built (and on first use exported) here, one after the other: the ONNX exporter is not thread-safe.
        self.frozen("image")
        self.frozen("text", finetune_layers)
        with ThreadPoolExecutor(_DECODE_WORKERS + 1) as pool:
            text_job = pool.submit(self.text_features, texts, finetune_layers, not pooled_only, progress)
            try:
                image = self._image_features(memes, not pooled_only, progress, pool)
            except BaseException:
                text_job.cancel()
                raise
            text = text_job.result()
        out = {"image_pooled": image["pooled"], "image_present": image["present"], "text_pooled": text["pooled"]}
        if not pooled_only:
            out.update(image_grid=image["grid"], text_tokens=text["tokens"], text_mask=text["mask"],
                       input_ids=text["input_ids"])
        return out

    def encode(self, memes: Sequence[Meme], finetune_layers: int = 0, pooled_only: bool = False,
               texts: Sequence[str] | None = None, progress: bool = False) -> dict[str, torch.Tensor]:
        """`encode_arrays` as PyTorch tensors, for the neural models."""
        import torch

        arrays = self.encode_arrays(memes, finetune_layers, pooled_only, texts, progress)
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}

    def mixed_image_grids(self, memes: Sequence[Meme], pairs: tuple[np.ndarray, np.ndarray],
                          lam: float) -> torch.Tensor:
        """Grids [P, 49, d] of the pixel mixes lam * image_i + (1 - lam) * image_j (SimRe's recreated memes),
        through the cache under a key of both images and lam."""
        import torch

        encoder = self.frozen("image")
        assert isinstance(encoder, FrozenImageEncoder)
        keys = [_image_key_and_source(m)[0] for m in memes]
        out = np.empty((len(pairs[0]), GRID_TOKENS, encoder.dim), dtype=np.float32)
        todo = []
        for row, (i, j) in enumerate(zip(*pairs)):
            key = content_hash(f"simre-mix:{keys[i]}:{keys[j]}:{lam}")
            entry = self.cache.get(encoder, key)
            if entry is not None and entry.get("grid") is not None and entry["grid"].shape == out.shape[1:]:
                out[row] = entry["grid"]
            else:
                todo.append((row, i, j, key))

        def pixels(index: int) -> np.ndarray:
            meme = memes[index]
            return encoder.preprocessing([decode_image(meme, _image_key_and_source(meme)[1])])[0]

        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            mixed = np.stack([lam * pixels(i) + (1 - lam) * pixels(j) for _, i, j, _ in chunk])
            for (row, _, _, key), grid in zip(chunk, encoder.run(mixed)[0]):
                entry = {"grid": grid.astype(np.float16)}
                self.cache.put(encoder, key, entry)
                out[row] = entry["grid"]  # the stored precision, so warm and cold runs agree
        return torch.from_numpy(out)


def _stack_text(entries: list[dict[str, np.ndarray]], encoder: FrozenTextEncoder) -> dict[str, np.ndarray]:
    count = len(entries)
    longest = max((entry["input_ids"].shape[0] for entry in entries), default=0)
    tokens = np.zeros((count, longest, encoder.dim), dtype=np.float32)
    mask = np.zeros((count, longest), dtype=bool)
    input_ids = np.full((count, longest), encoder.tokenizer.pad_token_id, dtype=np.int64)
    pooled = np.empty((count, encoder.dim), dtype=np.float32)
    for row, entry in enumerate(entries):
        length = entry["input_ids"].shape[0]
        tokens[row, :length] = entry["tokens"]
        mask[row, :length] = True
        input_ids[row, :length] = entry["input_ids"]
        pooled[row] = entry["pooled"]
    return {"tokens": tokens, "mask": mask, "pooled": pooled, "input_ids": input_ids}
