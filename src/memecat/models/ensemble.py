"""Neural models kept as a list of member networks whose scores are averaged; saved in one folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from memecat.data.meme import Meme
from memecat.errors import MemecatError
from memecat.models.base import EncoderConfig, MemeModel
from memecat.models.tensors import subset
from memecat.models.thresholds import choose_thresholds
from memecat.training import TrainConfig


def member_splits(n_train: int, n_total: int, size: int, dev_size: int, seed: int, has_val: bool,
                  own: np.ndarray | None = None):
    """(train, dev) index pairs: the original split first (if any), then random dev sets of dev_size.

    Dev memes come only from the rows `own` marks (the task's own memes; default every row): the others
    always train, so selection is judged on the task's data alone.
    """
    rng = np.random.default_rng(seed)
    own = np.ones(n_total, dtype=bool) if own is None else np.asarray(own, dtype=bool)
    candidates = np.flatnonzero(own)
    everyone = np.arange(n_total)
    splits = []
    if has_val:
        dev = np.arange(n_train, n_total)
        dev = dev[own[dev]]
        splits.append((np.setdiff1d(everyone, dev), dev))
    while len(splits) < size:
        # Permuting the candidates' positions draws exactly what permuting every row did when all are own.
        perm = candidates[rng.permutation(len(candidates))]
        dev = np.sort(perm[:dev_size])
        splits.append((np.setdiff1d(everyone, dev), dev))
    return splits


class EnsembleConfig(EncoderConfig):
    """What every ensemble of neural members shares."""

    finetune_layers: int = 0  # last text-encoder layers trained with the model (0: frozen encoder)
    ensemble_size: int = 1
    ensemble_dev_size: int = 64  # held-out memes per member beyond the first, for selection and thresholds
    threshold_mode: str = "global"
    train: TrainConfig = TrainConfig()

    @property
    def trains_on_eval_memes(self) -> bool:
        # Members after the first draw their training memes from train+eval (the paper's ensemble).
        return self.ensemble_size > 1

    @property
    def selects_on_eval_memes(self) -> bool:
        return True  # early stopping and thresholds


class EnsembleModel(MemeModel):
    """A MemeModel made of `members` (nn.Modules), each trained on its own (train, dev) split.

    Subclasses give `inputs()` (memes -> tensors), `fit_member()` (train one net) and `_member_proba()`.
    Members are the paper's ensemble: the original train/dev split first (when a val split is given),
    then random dev sets of `ensemble_dev_size` memes drawn from the pool's own memes (extra sources'
    memes always train). Tensors carry a per-row `weight`, the meme's source weight, for the loss.
    """

    members: list[nn.Module]

    def __init__(self, task, config=None, features=None):
        super().__init__(task, config, features)
        self.members = []
        # (gold, scores) of the memes each member held out for selection, member by member (after fit()).
        self.held_out_members: list[tuple[np.ndarray, np.ndarray]] = []

    @property
    def held_out(self) -> tuple[np.ndarray, np.ndarray]:
        """The members' held-out (gold, scores) pooled: each meme scored by a member that never saw it."""
        return tuple(np.concatenate(part) for part in zip(*self.held_out_members))

    def new_net(self) -> nn.Module:
        raise NotImplementedError

    def inputs(self, memes: list[Meme], progress: bool = False) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fit_member(self, member: int, seed: int, memes: list[Meme], train: dict[str, torch.Tensor],
                   dev: dict[str, torch.Tensor]) -> nn.Module:
        """Train one member on `train` (rows of `memes`), selecting on `dev`; return the net."""
        raise NotImplementedError

    def _member_proba(self, net: nn.Module, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        raise NotImplementedError

    def _fit(self, memes: list[Meme], eval_memes: list[Meme]) -> None:
        from memecat.training.loop import seeded

        cfg = self.config
        pool = memes + eval_memes
        own = np.array([m.source is None for m in pool], dtype=bool)
        if not own.any():
            raise MemecatError(f"{self.model_type}: no memes of the task's own to select on")
        tensors = self.inputs(pool, progress=True)
        y = self.task.encode(pool)
        tensors["labels"] = torch.from_numpy(y)
        tensors["weight"] = torch.from_numpy(self.sample_weights(pool))  # per row: its source's weight
        self.note_training_data(pool)
        splits = member_splits(len(memes), len(pool), cfg.ensemble_size,
                               min(cfg.ensemble_dev_size, int(own.sum()) // 5), cfg.seed, bool(eval_memes), own)
        self.members, self.held_out_members = [], []
        for k, (train_idx, dev_idx) in enumerate(splits):
            seed = cfg.seed * 1000 + k
            with seeded(seed):  # the member's initial weights, shuffling and sampling
                net = self.fit_member(k, seed, [pool[i] for i in train_idx], subset(tensors, train_idx),
                                      subset(tensors, dev_idx))
            net.eval()
            self.members.append(net)
            self.held_out_members.append((y[dev_idx], self._member_proba(net, subset(tensors, dev_idx))))
        if self.task.multi_label:  # chosen on the pooled held-out scores
            self.thresholds = self.choose_thresholds()
        else:
            self.class_offsets = self.choose_class_offsets()

    def choose_thresholds(self) -> np.ndarray:
        return choose_thresholds(*self.held_out, self.config.threshold_mode)

    def choose_class_offsets(self) -> np.ndarray:
        return np.zeros(self.task.num_labels, dtype=np.float32)

    def member_log_dir(self, member: int) -> Path | None:
        return Path(self.log_dir) / f"member{member}" if self.log_dir else None

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"member{k}.{name}": t for k, net in enumerate(self.members) for name, t in net.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for k, net in enumerate(self.members):
            prefix = f"member{k}."
            net.load_state_dict({n[len(prefix):]: torch.tensor(t) for n, t in state.items() if n.startswith(prefix)})
            net.eval()

    def extra_metadata(self) -> dict:
        return {"members": len(self.members)}

    @classmethod
    def _from_metadata(cls, task, config, meta, features):
        model = cls(task, config, features)
        model.members = [model.new_net() for _ in range(int(meta.get("members", config.ensemble_size)))]
        return model
