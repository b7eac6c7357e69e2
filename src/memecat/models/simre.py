"""SimRe: Simulation of memes Recreation, with be/not prompts and a two-stream cross-modal transformer.

Rows are (meme, category) pairs. Each row's text is the category's prompt ("My technique is {label}." or
"... is not {label}.") followed by the meme's text; two cross-modal transformers read it against the image:
    I = TF(sources: e(text), targets: e(image)),   T = TF(sources: e(image), targets: e(text))   (Eq. 8)
and are trained with InfoNCE + hard negatives on batches that also hold recreated memes: image = lam * image_i +
(1 - lam) * image_j (pixels), text = text_i + " " + text_j, labels = labels_i OR labels_j
(memecat.training.simre). A category is predicted when the meme's image-text similarity under the be-prompt
beats the not-prompt's.

Texts come from the text encoder as token features: a prompt and a meme text are encoded apart and their
token sequences concatenated (likewise the two texts of a recreated meme). With `finetune_layers`, the
encoder's last layers are trained with the model over the cached states below them, as the paper
fine-tunes its encoders. The trainable self-attention
of the text stream is what reads them together; encoding every (meme, category, be/not) text jointly
would cost N x C x 2 encoder passes and as many cached token matrices, and recreated texts would need more.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from memecat.data.meme import Meme
from memecat.errors import MemecatError
from memecat.models.ensemble import EnsembleConfig, EnsembleModel
from memecat.models.registry import register_model
from memecat.models.tensors import TensorDictDataset, subset
from memecat.models.thresholds import class_offsets
from memecat.tasks import Task
from memecat.training import TrainConfig

BE, NOT = 0, 1  # prompt polarity index


class SimReTraining(TrainConfig):
    lr: float = 5e-4  # the paper's 5e-5 fine-tunes CLIP; these layers start from scratch
    text_lr: float = 5e-5  # fine-tuned text-encoder layers, at the paper's rate
    lr_step_epochs: int | None = 10
    lr_gamma: float = 0.5
    batch_size: int = 16
    max_epochs: int = 10
    patience: int = 4
    early_stopping: bool = True


class SimReConfig(EnsembleConfig):
    width: int = 64  # CPU-small: one training step of width 256 costs ~15x more
    layers: int = 1
    heads: int = 4
    ff_dim: int = 128
    dropout: float = 0.1
    max_text_tokens: int = 32  # meme text tokens kept (the prompt comes on top)
    # Prompt wording, "{label}" standing for the category (None: the task's, e.g. "My technique is {label}.").
    be_prompt: str | None = None
    not_prompt: str | None = None
    # The paper uses 0.2 for propaganda and 0.5 for harm; 0.2 won clearly in CV on all three harm tasks
    # (benchmarks/simre_experiments.py --part table2), so 0.2 everywhere.
    temperature: float = 0.2
    simulation: bool = True
    # Recreated memes mix pixels (the paper's MixGen): one pool of mixed images per run, encoded once.
    mix_lambda: float = 0.5
    recreated_per_batch: float = 0.5  # recreated memes per original meme in a batch
    pixel_pairs: int | None = None  # size of the recreated pool (None: one per training meme)
    categories_per_meme: int | None = 4  # training rows per meme; positives first (None: every category)
    # 5-fold CV on SemEval: margin (global threshold) micro-F1 0.551 vs argmax 0.279; argmax over-predicts.
    rule: Literal["argmax", "margin"] = "margin"
    threshold_mode: Literal["global", "per-label", "joint"] = "global"
    # Single-label tasks: per-class offsets on the log scores, chosen on the held-out memes for macro-F1.
    class_offsets: bool = False
    ensemble_size: int = 1
    ensemble_dev_size: int = 96  # held-out memes for early stopping and the margin rule when no val split is given
    train: SimReTraining = SimReTraining()


# --- prompts --------------------------------------------------------------------------------------
def prompt_labels(task: Task) -> tuple[str, ...]:
    """The categories that get a be/not prompt pair: every label, or a 2-class task's positive one."""
    return task.prompted_labels or task.labels


def prompt_columns(task: Task) -> list[int]:
    """Column of each prompted category in the task's label order."""
    return [task.labels.index(label) for label in prompt_labels(task)]


def prompt_texts(task: Task, config: SimReConfig | None = None) -> list[str]:
    """[C * 2] texts: be-prompt then not-prompt of each prompted category, in label order; the config's
    wording, where given, replaces the task's."""
    be = (config and config.be_prompt) or task.be_prompt
    not_ = (config and config.not_prompt) or task.not_prompt
    try:
        texts = [p.format(label=label) for label in prompt_labels(task) for p in (be, not_)]
    except (KeyError, IndexError, ValueError) as exc:
        raise MemecatError(f"SimRe prompts {be!r} / {not_!r}: only {{label}} may stand in braces ({exc})") from None
    if len(set(texts)) < len(texts):
        raise MemecatError(f"SimRe prompts {be!r} / {not_!r}: every category needs its own be- and not-text "
                           "(put {label} in both)")
    return texts


def to_task_scores(scores: torch.Tensor, task: Task) -> torch.Tensor:
    """Prompted categories' scores [N, C] -> [N, num_labels]; an unprompted label (a single-label task's
    only one) scores 1 - the best prompted score, so "harmful" wins exactly when its be-prompt wins."""
    columns = prompt_columns(task)
    if len(columns) == task.num_labels:
        return scores
    out = (1 - scores.max(dim=1, keepdim=True).values).expand(-1, task.num_labels).clone()
    out[:, columns] = scores
    return out


# --- the network ----------------------------------------------------------------------------------
class CrossModalStream(nn.Module):
    """Targets self-attend, then cross-attend to the sources (the memory); mean-pooled over real targets."""

    def __init__(self, config: SimReConfig):
        super().__init__()
        layer = nn.TransformerDecoderLayer(config.width, config.heads, config.ff_dim, config.dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.layers, norm=nn.LayerNorm(config.width))

    def forward(self, targets: torch.Tensor, target_mask: torch.Tensor, sources: torch.Tensor,
                source_mask: torch.Tensor) -> torch.Tensor:
        """targets [R, Lt, w], sources [R, Ls, w], masks True on real tokens -> [R, w], the mean over the real
        targets."""
        out = self.decoder(targets, sources, tgt_key_padding_mask=~target_mask,
                           memory_key_padding_mask=~source_mask)
        weights = target_mask.unsqueeze(-1).float()
        return (out * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class SimReNet(nn.Module):
    """(memes, categories, prompt polarity) -> L2-normalised text and image embeddings per row."""

    def __init__(self, prompt_tokens: torch.Tensor, prompt_mask: torch.Tensor, text_dim: int, image_dim: int,
                 config: SimReConfig, text_top: nn.Module | None = None):
        super().__init__()
        w = config.width
        # Prompt token features [C, 2, Lp, d] from the frozen encoder (below `text_top`, if any); saved so a
        # loaded model needs no re-encoding.
        self.register_buffer("prompt_tokens", prompt_tokens)
        self.register_buffer("prompt_mask", prompt_mask)
        self.text_top = text_top  # the text encoder's last layers, fine-tuned here (None: frozen encoder)
        # LayerNorm first: frozen CNN grids and transformer tokens arrive on very different scales.
        self.text_proj = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, w))
        self.image_proj = nn.Sequential(nn.LayerNorm(image_dim), nn.Linear(image_dim, w))
        self.image_stream = CrossModalStream(config)  # I: image targets read the text
        self.text_stream = CrossModalStream(config)  # T: text targets read the image
        self.text_out = nn.Linear(w, w)
        self.image_out = nn.Linear(w, w)

    def meme_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The memes' token states, through the fine-tuned layers if any."""
        if self.text_top is None:
            return batch["text_tokens"]
        return self.text_top(batch["text_tokens"], batch["text_mask"])

    def prompt_states(self) -> torch.Tensor:
        """The prompts' token states [C, 2, Lp, d], through the fine-tuned layers if any."""
        if self.text_top is None:
            return self.prompt_tokens
        c, _, length, d = self.prompt_tokens.shape
        tokens = self.text_top(self.prompt_tokens.view(c * 2, length, d), self.prompt_mask.view(c * 2, length))
        return tokens.view(c, 2, length, d)

    def forward(self, batch: dict[str, torch.Tensor], categories: torch.Tensor,
                *polarities: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """categories [B, K] and polarities [B, K] -> per polarity: text, image [B, K, w] (unit length). The
        fine-tuned text layers, if any, run once for all polarities."""
        tokens, prompt_states = self.meme_tokens(batch), self.prompt_states()
        return [self.embed(batch, tokens, prompt_states, categories, polarity) for polarity in polarities]

    def embed(self, batch: dict[str, torch.Tensor], tokens: torch.Tensor, prompt_states: torch.Tensor,
              categories: torch.Tensor, polarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, k = categories.shape
        prompts = self.text_proj(prompt_states[categories, polarity])  # [B, K, Lp, w]
        prompt_mask = self.prompt_mask[categories, polarity]
        meme = self.text_proj(tokens)[:, None].expand(-1, k, -1, -1)
        meme_mask = batch["text_mask"][:, None].expand(-1, k, -1)
        text = torch.cat([prompts, meme], dim=2).flatten(0, 1)
        text_mask = torch.cat([prompt_mask, meme_mask], dim=2).flatten(0, 1)
        image = self.image_proj(batch["image_grid"])
        image = image[:, None].expand(-1, k, -1, -1).flatten(0, 1)
        image_mask = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        image_emb = self.image_out(self.image_stream(image, image_mask, text, text_mask))
        text_emb = self.text_out(self.text_stream(text, text_mask, image, image_mask))
        return F.normalize(text_emb, dim=-1).view(b, k, -1), F.normalize(image_emb, dim=-1).view(b, k, -1)

    def similarities(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_be, s_not) [B, C]: image-text cosine under each category's be- and not-prompt."""
        n, c = len(batch["image_grid"]), self.prompt_tokens.shape[0]
        categories = torch.arange(c, device=batch["image_grid"].device).expand(n, -1)
        be, not_ = self(batch, categories, torch.full_like(categories, BE), torch.full_like(categories, NOT))
        return (be[0] * be[1]).sum(-1), (not_[0] * not_[1]).sum(-1)


# --- training ------------------------------------------------------------------------------------
def margin_scores(s_be: torch.Tensor, s_not: torch.Tensor, temperature: float) -> torch.Tensor:
    """Scores in [0, 1]: above 0.5 exactly when the be-prompt wins."""
    return torch.sigmoid((s_be - s_not) / temperature)


# --- the model ------------------------------------------------------------------------------------
@register_model("simre")
class SimReModel(EnsembleModel):
    """SimRe: recreated memes, be/not prompts, a two-stream cross-modal transformer (optionally K averaged)."""

    config_class = SimReConfig

    @property
    def temperature(self) -> float:
        return self.config.temperature

    # --- building --------------------------------------------------------------------------
    def prompt_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen token features of every prompt: [C, 2, Lp, d] and mask [C, 2, Lp]."""
        encoder = self.features.frozen_text_encoder(self.config.finetune_layers)
        inputs = encoder.tokenize(prompt_texts(self.task, self.config))
        with torch.inference_mode():
            features = encoder(**inputs)
        c = len(prompt_labels(self.task))
        # Stored at the cache's float16 precision, like every other frozen feature.
        tokens = features.tokens.to(torch.float16).float() * features.mask.unsqueeze(-1)
        return tokens.reshape(c, 2, *tokens.shape[1:]).clone(), features.mask.bool().reshape(c, 2, -1).clone()

    def new_net(self, prompts: tuple[torch.Tensor, torch.Tensor] | None = None) -> SimReNet:
        features = self.features
        return SimReNet(*(prompts or self.prompt_features()), features.text_encoder.dim, features.image_encoder.dim,
                        self.config, features.trainable_text_top(self.config.finetune_layers))

    def inputs(self, memes: list[Meme], progress: bool = False) -> dict[str, torch.Tensor]:
        x = self.features.encode(memes, self.config.finetune_layers, progress=progress)
        t = self.config.max_text_tokens
        # contiguous: a copy of the kept tokens, so the full-length token states can be freed (memory on Harm-C).
        return {"image_grid": x["image_grid"], "image_present": x["image_present"],
                "text_tokens": x["text_tokens"][:, :t].contiguous(),
                "text_mask": x["text_mask"][:, :t].contiguous()}


    # --- the verbs -------------------------------------------------------------------------
    def note_training_data(self, memes: list[Meme]) -> None:
        # Memes with an image are the only ones fit_member trains on.
        super().note_training_data([m for m in memes if m.image is not None])

    def fit_member(self, member, seed, memes, train, dev) -> SimReNet:
        # The loss pairs each text with its image, so only memes with an image train (and are mixed); dev
        # keeps every meme, read as at prediction time (a missing image as the zero grid). Source weights are
        # not applied: InfoNCE's rows are each other's negatives and recreated rows mix two memes, and the
        # extra sources are text-only anyway, so none of their memes reaches this loss.
        keep = train["image_present"]
        if not keep.any():
            raise MemecatError("SimRe learns from memes with an image; none of its training memes has one")
        if not keep.all():
            rows = keep.nonzero().flatten()
            train, memes = subset(train, rows), [memes[i] for i in rows.tolist()]
        from memecat.training.loop import fit_module
        from memecat.training.simre import SimReObjective, recreated_pool

        # Training rows carry labels over the prompted categories, so a recreated meme's OR stays meaningful
        # (harmful if either meme is); dev keeps the task's labels, which validation scores against.
        train = {**train, "labels": train["labels"][:, prompt_columns(self.task)]}
        pool = recreated_pool(self.features, memes, train, self.config, seed) if self.config.simulation else None
        net = self.new_net()
        fit_module(SimReObjective(net, self.config, self.task, pool), train, dev, self.config.train, seed,
                   self.member_log_dir(member))
        return net

    def choose_thresholds(self) -> np.ndarray:
        # argmax: "be" wins <=> score >= 0.5; margin: thresholds on the members' unseen dev memes.
        if self.config.rule == "argmax":
            return np.full(self.task.num_labels, 0.5, dtype=np.float32)
        return super().choose_thresholds()

    def choose_class_offsets(self) -> np.ndarray:
        return class_offsets(*self.held_out) if self.config.class_offsets else super().choose_class_offsets()

    @torch.inference_mode()
    def _member_similarities(self, net: SimReNet, tensors: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        net.eval()
        pairs = [net.similarities(batch) for batch in DataLoader(TensorDictDataset(tensors), batch_size=32)]
        return torch.cat([p[0] for p in pairs]).numpy(), torch.cat([p[1] for p in pairs]).numpy()

    def scores_from_similarities(self, s_be: np.ndarray, s_not: np.ndarray) -> np.ndarray:
        """Similarities under the prompts -> [N, num_labels] scores."""
        margins = margin_scores(torch.from_numpy(s_be), torch.from_numpy(s_not), self.temperature)
        return to_task_scores(margins, self.task).numpy()

    def _member_proba(self, net: SimReNet, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        return self.scores_from_similarities(*self._member_similarities(net, tensors))

    def similarities(self, memes: list[Meme]) -> tuple[np.ndarray, np.ndarray]:
        """(s_be, s_not) [N, C], averaged over members."""
        tensors = self.inputs(memes)
        pairs = [self._member_similarities(net, tensors) for net in self.members]
        return np.mean([p[0] for p in pairs], axis=0), np.mean([p[1] for p in pairs], axis=0)

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        return self.scores_from_similarities(*self.similarities(memes))

    def _explain(self, memes: list[Meme]) -> list[dict]:
        """Per prompted label: similarity under the be- and the not-prompt, and their margin."""
        s_be, s_not = self.similarities(memes)
        return [{label: {"be": round(float(b), 4), "not": round(float(n), 4), "margin": round(float(b - n), 4)}
                 for label, b, n in zip(prompt_labels(self.task), row_be, row_not)}
                for row_be, row_not in zip(s_be, s_not)]

    @classmethod
    def _from_metadata(cls, task, config, meta, features):
        model = cls(task, config, features)
        prompts = model.prompt_features()  # shapes only: the saved buffers overwrite them
        model.members = [model.new_net(prompts) for _ in range(int(meta.get("members", config.ensemble_size)))]
        return model
