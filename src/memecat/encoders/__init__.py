"""Frozen text and image encoders by registered name, hub repo id or checkpoint folder.

`minilm-l6` and `efficientnet-lite0` work offline; a folder holding a transformers checkpoint of a supported
family (config.json, weights, tokenizer or preprocessor_config.json) works offline too. The PyTorch side
(memecat.encoders.catalog) is imported on first use, so the ONNX Runtime path never loads torch.
"""

from memecat.encoders.preprocess import GRID_TOKENS, ImagePreprocessing

_FROM_CATALOG = ("IMAGE_ENCODERS", "TEXT_ENCODERS", "EncoderInfo", "ImageEncoder", "ImageFeatures", "TextEncoder",
                 "TextFeatures", "encoder_catalog", "get_image_encoder", "get_text_encoder", "register_encoder",
                 "supported_families")

__all__ = ["GRID_TOKENS", "IMAGE_ENCODERS", "TEXT_ENCODERS", "EncoderInfo", "ImageEncoder", "ImageFeatures",
           "ImagePreprocessing", "TextEncoder", "TextFeatures", "encoder_catalog", "get_image_encoder",
           "get_text_encoder", "register_encoder", "supported_families"]


def __getattr__(name: str):
    if name in _FROM_CATALOG:
        from memecat.encoders import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module 'memecat.encoders' has no attribute {name!r}")
