"""Neural models kept as a list of member networks whose scores are averaged; saved in one folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from memecat.models.base import MemeModel
from memecat.training import TrainerOptions


class EnsembleModel(MemeModel):
    """A MemeModel made of `members` (nn.Modules); subclasses build a member with `new_net()`."""

    members: list[nn.Module]
    log_dir: Path | None = None  # where Lightning's CSV logs and checkpoints go (a temp folder when None)

    def __init__(self, task, config=None):
        super().__init__(task, config)
        self.members = []
        # (gold, scores) of the memes each member held out for selection: thresholds and rule studies.
        self.held_out: tuple[np.ndarray, np.ndarray] | None = None

    def new_net(self) -> nn.Module:
        raise NotImplementedError

    def trainer_options(self, member: int, seed: int) -> TrainerOptions:
        cfg = self.config
        return TrainerOptions(max_epochs=cfg.max_epochs, patience=cfg.patience,
                              early_stopping=cfg.early_stopping, seed=seed, devices=cfg.devices,
                              num_nodes=cfg.num_nodes, strategy=cfg.strategy,
                              log_dir=str(Path(self.log_dir) / f"member{member}") if self.log_dir else None)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"member{k}.{name}": t for k, net in enumerate(self.members) for name, t in net.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, net in enumerate(self.members):
            prefix = f"member{k}."
            net.load_state_dict({n[len(prefix):]: t for n, t in state.items() if n.startswith(prefix)})
            net.eval()

    def extra_metadata(self) -> dict:
        return {"members": len(self.members),
                "encoders": {"text": self.config.text_encoder, "image": self.config.image_encoder}}

    @classmethod
    def _from_metadata(cls, task, config, meta, directory):
        model = cls(task, config)
        model.members = [model.new_net() for _ in range(int(meta.get("members", config.ensemble_size)))]
        return model
