"""Feature cache: computed once, keyed by encoder fingerprint and content, robust to damage and deletion."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ResNetConfig

from memecat.data.meme import Meme
from memecat.encoders import TextEncoder, get_text_encoder
from memecat.encoders.base import Encoder
from memecat.encoders.cache import FeatureCache, default_cache_dir
from memecat.encoders.image import ResNetEncoder, resnet_50
from memecat.errors import DataError
from memecat.features import FeatureExtractor


def tiny_resnet(seed: int) -> ResNetEncoder:
    torch.manual_seed(seed)
    return resnet_50(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))


def count_encoded(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every forward call from now on."""
    sizes: list[int] = []
    forward = encoder.forward

    def counted(*args: torch.Tensor, **kwargs: torch.Tensor) -> object:
        sizes.append(len(args[0] if args else kwargs["input_ids"]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(encoder, "forward", counted)
    return sizes


def image_features(memes, encoder, cache, batch_size=32, progress=False):
    # Encoders run in PyTorch here, so counting forward calls counts encoded memes (no export checks).
    extractor = FeatureExtractor(None, encoder, cache, runtime="torch", batch_size=batch_size)
    return extractor.image_features(memes, progress=progress)


def text_features(memes, encoder, cache, progress=False):
    extractor = FeatureExtractor(encoder, None, cache, runtime="torch")
    return extractor.text_features([m.text for m in memes], progress=progress)


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return get_text_encoder("minilm-l6")


@pytest.fixture
def memes(tmp_path: Path) -> list[Meme]:
    rng = np.random.default_rng(0)
    result = []
    for index, size in enumerate([(120, 90), (64, 200), (300, 300)]):
        path = tmp_path / f"meme{index}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        result.append(Meme(id=str(index), text=f"hello meme {index}", image=path))
    return result


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(tmp_path / "cache")


def entries(cache: FeatureCache) -> list[Path]:
    return sorted(cache.root.rglob("*.safetensors"))


def test_second_call_encodes_nothing(memes, cache, monkeypatch) -> None:
    encoder = tiny_resnet(0)
    encoded = count_encoded(encoder, monkeypatch)
    first = image_features(memes, encoder, cache, batch_size=2, progress=False)
    assert sum(encoded) == 3 and len(entries(cache)) == 3
    assert first["grid"].shape == (3, 49, 16) and first["grid"].dtype == np.float32
    assert first["pooled"].shape == (3, 16)

    second = image_features(memes, encoder, cache, batch_size=2, progress=False)
    assert sum(encoded) == 3
    assert np.array_equal(first["grid"], second["grid"]) and np.array_equal(first["pooled"], second["pooled"])

    reordered = image_features(memes[::-1], encoder, cache, progress=False)
    assert np.array_equal(reordered["grid"], first["grid"][::-1])


def test_changed_image_misses(memes, cache, monkeypatch) -> None:
    encoder = tiny_resnet(0)
    encoded = count_encoded(encoder, monkeypatch)
    image_features(memes, encoder, cache, progress=False)
    Image.new("RGB", (50, 50), (200, 10, 10)).save(memes[1].image)
    image_features(memes, encoder, cache, progress=False)
    assert encoded == [3, 1]


def test_other_fingerprint_misses(memes, cache, monkeypatch) -> None:
    image_features(memes, tiny_resnet(0), cache, progress=False)
    other = tiny_resnet(1)
    encoded = count_encoded(other, monkeypatch)
    image_features(memes, other, cache, progress=False)
    assert encoded == [3]
    assert len(list((cache.root / "resnet-50").iterdir())) == 2  # one folder per fingerprint


def test_corrupt_entries_are_recomputed(memes, cache, monkeypatch) -> None:
    encoder = tiny_resnet(0)
    first = image_features(memes, encoder, cache, progress=False)
    damaged = entries(cache)
    damaged[0].write_bytes(b"not a safetensors file")
    damaged[1].write_bytes(damaged[1].read_bytes()[:40])
    encoded = count_encoded(encoder, monkeypatch)
    again = image_features(memes, encoder, cache, progress=False)
    assert encoded == [2]
    assert np.array_equal(first["grid"], again["grid"])
    assert image_features(memes, encoder, cache, progress=False)["grid"].shape == (3, 49, 16)
    assert encoded == [2]  # repaired on disk


def test_cache_can_be_deleted_between_calls(memes, cache, monkeypatch) -> None:
    encoder = tiny_resnet(0)
    image_features(memes, encoder, cache, progress=False)
    shutil.rmtree(cache.root)
    encoded = count_encoded(encoder, monkeypatch)
    image_features(memes, encoder, cache, progress=False)
    assert encoded == [3] and len(entries(cache)) == 3


def test_missing_image_names_the_meme(memes, cache) -> None:
    broken = [*memes, Meme(id="gone", text="", image=memes[0].image.with_name("gone.png"))]
    with pytest.raises(DataError, match=r"gone\.png \[id gone\]"):
        image_features(broken, tiny_resnet(0), cache, progress=False)


def test_text_features_are_cached_and_padded(memes, cache, minilm, monkeypatch) -> None:
    memes = [*memes, memes[0]]  # a repeated text is encoded once
    with torch.inference_mode():
        direct = minilm(**minilm.tokenize([memes[1].text]))
    encoded = count_encoded(minilm, monkeypatch)
    first = text_features(memes, minilm, cache, progress=False)
    assert encoded == [3]
    lengths = first["mask"].sum(1)
    assert first["tokens"].shape == (4, int(lengths.max()), 384) and first["pooled"].shape == (4, 384)
    assert (first["input_ids"][~first["mask"]] == minilm.pad_token_id).all()
    assert minilm.convert_ids_to_tokens(first["input_ids"][0, : lengths[0]])[:2] == ["[CLS]", "hello"]
    np.testing.assert_allclose(first["pooled"][1], direct.pooled[0].numpy(), atol=1e-5, rtol=1e-5)

    second = text_features(memes, minilm, cache, progress=False)
    assert encoded == [3]
    for key in first:
        assert np.array_equal(first[key], second[key])


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MEMECAT_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    assert FeatureCache().root == tmp_path / "here"
    monkeypatch.delenv("MEMECAT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "memecat"
