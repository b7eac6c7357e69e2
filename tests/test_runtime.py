"""Frozen encoders through ONNX Runtime give PyTorch's features, and fall back to PyTorch when they cannot."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from test_encoders import TEXTS, TINY, tiny_resnet, tiny_tokenizer
from transformers import RobertaConfig

from memecat.encoders import get_image_encoder, get_text_encoder
from memecat.encoders.cache import default_cache_dir
from memecat.encoders.runtime import frozen_runner
from memecat.encoders.text import roberta_base


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (180 + 40 * i, 320, 3), dtype=np.uint8)) for i in range(3)]
    return get_image_encoder("efficientnet-lite0").preprocess(images)


def assert_same_features(encoder, *inputs: torch.Tensor, runtime: str = "onnx") -> None:
    with torch.inference_mode():
        expected = encoder(*inputs)
    run, _ = frozen_runner(encoder, default_cache_dir() / "onnx", runtime)
    got = run(*(value.numpy() for value in inputs))
    first = expected.grid if hasattr(expected, "grid") else expected.tokens
    for want, have in zip((first, expected.pooled), got):
        assert have.shape == tuple(want.shape)
        np.testing.assert_allclose(have, want.numpy(), atol=1e-3, rtol=1e-3)


def exported(encoder) -> list:
    return list((default_cache_dir() / "onnx" / encoder.name).glob("*.onnx"))


def test_offline_encoders_run_in_onnx_runtime_with_the_same_features(pixels: torch.Tensor) -> None:
    image = get_image_encoder("efficientnet-lite0")
    assert_same_features(image, pixels)
    text = get_text_encoder("minilm-l6")
    batch = text.tokenize(TEXTS + ["one more caption, of another length"])
    assert_same_features(text, batch["input_ids"], batch["attention_mask"])
    assert exported(image) and exported(text)


def test_tiny_hub_encoders_give_the_same_features_either_way() -> None:
    roberta = roberta_base(
        RobertaConfig(**TINY, vocab_size=16, pad_token_id=0, max_position_embeddings=160), tiny_tokenizer())
    batch = roberta.tokenize(TEXTS)
    assert_same_features(roberta, batch["input_ids"], batch["attention_mask"])
    resnet = tiny_resnet()
    assert_same_features(resnet, torch.randn(2, 3, 224, 224))


def test_failed_export_falls_back_to_pytorch(monkeypatch, caplog) -> None:
    def broken(encoder, path):
        raise RuntimeError("exporter says no")

    monkeypatch.setattr("memecat.encoders.runtime._export", broken)
    encoder = tiny_resnet(seed=3)
    with caplog.at_level(logging.WARNING, logger="memecat.encoders.runtime"):
        assert_same_features(encoder, torch.randn(2, 3, 224, 224))
    assert "runs in PyTorch" in caplog.text and "exporter says no" in caplog.text


def test_runtime_torch_skips_the_export() -> None:
    encoder = tiny_resnet(seed=4)
    assert_same_features(encoder, torch.randn(2, 3, 224, 224), runtime="torch")
    assert not any(path.name.startswith(encoder.fingerprint()) for path in exported(encoder))
