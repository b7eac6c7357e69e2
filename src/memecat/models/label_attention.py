"""The label-attention model of 1213Li at SemEval-2021 Task 6 (3rd of 16), and its 5-model ensemble.

Per label i a learned embedding L_i attends over the text tokens T and the 7x7 image grid V:
    S_ij = L_i . T_j,  alpha_i = softmax_j(S_i),  T_i,att = sum_j alpha_ij T_j   (likewise V_i,att)
    R_i = [T_avg; V_avg; T_i,att; V_i,att]  ->  shared 3-layer classifier  ->  one logit per label.

The net is here; how it is trained (loss, optimiser) is memecat.training.label_attention.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from memecat.data.meme import Meme
from memecat.models.ensemble import EnsembleConfig, EnsembleModel
from memecat.models.registry import register_model
from memecat.models.tensors import TensorDictDataset
from memecat.tasks import Task
from memecat.training import TrainConfig


class LabelAttentionTraining(TrainConfig):
    max_epochs: int = 10
    early_stopping: bool = False  # True: keep the epoch with the best dev micro-F1
    patience: int = 8
    lr: float = 3e-4
    text_lr: float = 5e-5
    batch_size: int = 64


class LabelAttentionConfig(EnsembleConfig):
    # Defaults chosen by 5-fold CV over SemEval train+dev (docs/experiments.md): the last 3 text-encoder
    # layers fine-tuned (the paper fine-tunes RoBERTa) for a fixed 10 epochs, with joint thresholds, against
    # the frozen encoder (25 epochs, per-label thresholds; the label-attention-frozen recipe): label AUC
    # 0.676 vs 0.640 (p = 0.02), micro / macro-F1 0.556 / 0.186 vs 0.514 / 0.187. Early stopping on 64 dev
    # memes' micro-F1 stopped at near-constant answers (label AUC ~0.55), so epochs are fixed.
    finetune_layers: int = 3
    attention: Literal["both", "text", "image", "none"] = "both"  # the paper's Table 1 ablation
    label_dim: int = 256
    hidden_dims: tuple[int, int] = (256, 128)
    dropout: float = 0.2
    ensemble_size: int = 5
    ensemble_dev_size: int = 64
    threshold_mode: Literal["global", "per-label", "joint"] = "joint"
    train: LabelAttentionTraining = LabelAttentionTraining()


class LabelAttentionNet(nn.Module):
    """The model alone: it does not know how it is trained."""

    def __init__(self, num_labels: int, text_dim: int, image_dim: int, config: LabelAttentionConfig,
                 text_top: nn.Module | None = None):
        super().__init__()
        d = config.label_dim
        self.attend_text = config.attention in ("both", "text")
        self.attend_image = config.attention in ("both", "image")
        self.text_top = text_top  # the text encoder's last layers, fine-tuned here (None: frozen encoder)
        # LayerNorm first: frozen CNN grids and transformer tokens arrive on very different scales.
        self.text_proj = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, d))
        self.image_proj = nn.Sequential(nn.LayerNorm(image_dim), nn.Linear(image_dim, d))
        self.label_embeddings = nn.Parameter(torch.randn(num_labels, d) / d**0.5)
        in_dim = d * (2 + self.attend_text + self.attend_image)
        h1, h2 = config.hidden_dims
        self.classifier = nn.Sequential(
            nn.Linear(in_dim, h1), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(h1, h2), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(h2, 1),
        )

    def attend(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B,N,d], mask [B,N] -> attended [B,L,d], alpha [B,L,N]."""
        scores = torch.einsum("ld,bnd->bln", self.label_embeddings, feats)
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        # Masked positions already get exactly 0; this also zeroes a row with nothing to attend to (a meme
        # without an image), which the softmax would spread evenly over padding.
        alpha = scores.softmax(dim=-1).masked_fill(~mask[:, None, :], 0.0)
        return torch.einsum("bln,bnd->bld", alpha, feats), alpha

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tokens, mask = batch["text_tokens"], batch["text_mask"]
        if self.text_top is not None:
            tokens = self.text_top(tokens, mask)
        t = self.text_proj(tokens)
        v = self.image_proj(batch["image_grid"])
        # A meme without an image contributes nothing from the image stream (its zero grid would project to
        # the bias); tensors without the key are all images.
        present = batch.get("image_present")
        if present is None:
            present = torch.ones(len(v), dtype=torch.bool, device=v.device)
        num_labels = self.label_embeddings.shape[0]
        weights = mask.float().unsqueeze(-1)
        t_avg = (t * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        v_avg = torch.where(present[:, None], v.mean(1), 0.0)
        parts = [t_avg[:, None].expand(-1, num_labels, -1), v_avg[:, None].expand(-1, num_labels, -1)]
        alphas = {}
        if self.attend_text:
            t_att, alphas["text"] = self.attend(t, mask)
            parts.append(t_att)
        if self.attend_image:
            v_att, alphas["image"] = self.attend(v, present[:, None].expand(v.shape[:2]))
            parts.append(v_att)
        logits = self.classifier(torch.cat(parts, dim=-1)).squeeze(-1)
        return logits, alphas


def scores_from_logits(logits: torch.Tensor, task: Task) -> torch.Tensor:
    return torch.sigmoid(logits) if task.multi_label else logits.softmax(dim=-1)


@register_model("label-attention")
class LabelAttentionEnsemble(EnsembleModel):
    """1213Li's label-attention over text tokens and a 7x7 image grid, K members averaged (SemEval-2021)."""

    config_class = LabelAttentionConfig

    # --- building --------------------------------------------------------------------------
    def new_net(self) -> LabelAttentionNet:
        features = self.features
        return LabelAttentionNet(self.task.num_labels, features.text_encoder.dim, features.image_encoder.dim,
                                 self.config, features.trainable_text_top(self.config.finetune_layers))

    def inputs(self, memes: list[Meme], progress: bool = False) -> dict[str, torch.Tensor]:
        return self.features.encode(memes, self.config.finetune_layers, progress=progress)

    def loader(self, tensors: dict[str, torch.Tensor]) -> DataLoader:
        return DataLoader(TensorDictDataset(tensors), batch_size=self.config.train.batch_size)

    # --- the verbs -------------------------------------------------------------------------
    def fit_member(self, member, seed, memes, train, dev) -> LabelAttentionNet:
        from memecat.training.label_attention import LabelAttentionObjective
        from memecat.training.loop import fit_module

        net = self.new_net()
        fit_module(LabelAttentionObjective(net, self.task, self.config.train), train, dev, self.config.train, seed,
                   self.member_log_dir(member))
        return net

    @torch.inference_mode()
    def _member_outputs(self, net: LabelAttentionNet, tensors: dict[str, torch.Tensor]):
        net.eval()
        probas, alphas = [], {"text": [], "image": []}
        for batch in self.loader(tensors):
            logits, a = net(batch)
            probas.append(scores_from_logits(logits, self.task))
            for key in a:
                alphas[key].append(a[key])
        return torch.cat(probas).numpy(), {k: torch.cat(v).numpy() for k, v in alphas.items() if v}

    def _member_proba(self, net: LabelAttentionNet, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        return self._member_outputs(net, tensors)[0]

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        tensors = self.inputs(memes)
        return np.mean([self._member_proba(net, tensors) for net in self.members], axis=0)

    def _explain(self, memes: list[Meme], top_k: int = 8) -> list[dict]:
        """Per label: top text tokens by attention and the 7x7 image attention (memes with an image), averaged
        over members."""
        tensors = self.inputs(memes)
        outputs = [self._member_outputs(net, tensors)[1] for net in self.members]
        encoder = self.features.text_encoder
        ids = tensors["input_ids"].numpy()
        mask = tensors["text_mask"].numpy()
        has_image = tensors["image_present"].numpy()
        special = set(encoder.tokenizer.all_special_ids)
        result = []
        for n in range(len(memes)):
            tokens = encoder.convert_ids_to_tokens([int(i) for i in ids[n]])
            per_label = {}
            for j, label in enumerate(self.task.labels):
                entry = {}
                if "text" in outputs[0]:
                    alpha = np.mean([o["text"][n, j] for o in outputs], axis=0)
                    order = [t for t in np.argsort(-alpha) if mask[n, t] and int(ids[n, t]) not in special]
                    entry["tokens"] = [{"token": tokens[t], "weight": round(float(alpha[t]), 4)}
                                       for t in order[:top_k]]
                if "image" in outputs[0] and has_image[n]:  # a meme without an image has no grid to show
                    grid = np.mean([o["image"][n, j] for o in outputs], axis=0).reshape(7, 7)
                    entry["image_grid"] = np.round(grid, 4).tolist()
                per_label[label] = entry
            result.append(per_label)
        return result
