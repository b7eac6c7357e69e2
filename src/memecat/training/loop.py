"""The one training loop: Lightning brings checkpoints, early stopping, progress bars, CSV logs and DDP.

An objective (a LightningModule in this package) wraps a model's net with its loss and optimiser, collects
validation scores and logs `val_score` (the task's primary metric); everything else is here, read from a
TrainConfig. Seeding happens here too, inside `seeded`, which leaves the caller's random state as it was.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from memecat.training.config import TrainConfig

MONITOR = "val_score"


def quiet_lightning() -> None:
    """Lightning's start-up banners are noise on a CPU-only tool; keep warnings that matter."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*treespec.*")


class ValidationScored(L.LightningModule):
    """Collects validation scores and labels, scores them once per epoch and logs `val_score`.

    Subclasses call `collect(proba, labels)` in `validation_step` and implement `score(labels, proba)`.
    """

    def __init__(self):
        super().__init__()
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def collect(self, proba: torch.Tensor, labels: torch.Tensor) -> None:
        self._val.append((proba, labels))

    def score(self, labels, proba) -> float:
        raise NotImplementedError

    def on_validation_epoch_end(self):
        proba = torch.cat([p for p, _ in self._val])
        labels = torch.cat([y for _, y in self._val])
        self._val.clear()
        if self.trainer.world_size > 1:  # every rank scores the whole validation set
            proba = self.all_gather(proba).reshape(-1, proba.shape[-1])
            labels = self.all_gather(labels).reshape(-1, labels.shape[-1])
        self.log(MONITOR, self.score(labels.cpu().numpy(), proba.float().cpu().numpy()), prog_bar=True)


def optimiser(net: torch.nn.Module, config: TrainConfig):
    """Adam over the net's own layers at `lr` and its fine-tuned text-encoder layers (`net.text_top`, if any) at
    `text_lr`, with StepLR when the config asks for it: what `configure_optimizers` returns."""
    head = [p for n, p in net.named_parameters() if not n.startswith("text_top.")]
    groups = [{"params": head, "lr": config.lr}]
    if net.text_top is not None:
        groups.append({"params": list(net.text_top.parameters()), "lr": config.text_lr})
    adam = torch.optim.Adam(groups, weight_decay=config.weight_decay)
    if config.lr_step_epochs is None:
        return adam
    return {"optimizer": adam,
            "lr_scheduler": torch.optim.lr_scheduler.StepLR(adam, config.lr_step_epochs, config.lr_gamma)}


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Python, numpy and torch generators seeded for the block (so initial weights, shuffling and sampling
    repeat), and restored afterwards (so training leaves its caller's random state alone)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        L.seed_everything(seed, workers=True, verbose=False)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            os.environ.pop("PL_GLOBAL_SEED", None)
            os.environ.pop("PL_SEED_WORKERS", None)


def loader(tensors: dict[str, torch.Tensor], batch_size: int, shuffle: bool) -> DataLoader:
    from memecat.models.tensors import TensorDictDataset

    return DataLoader(TensorDictDataset(tensors), batch_size=batch_size, shuffle=shuffle)


def fit_module(module: L.LightningModule, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor] | None,
               config: TrainConfig, seed: int, log_dir: str | Path | None = None,
               progress: bool | None = None) -> L.LightningModule:
    """Train `module` on the rows of `train`, scoring `val` every epoch, and return it with the weights of its
    best epoch by validation score (early stopping) or of its last epoch. Call it inside `seeded(seed)` with
    the net built there too, so a seed gives one model."""
    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    progress = sys.stderr.isatty() if progress is None else progress
    train_loader = loader(train, config.batch_size, shuffle=True)
    val_loader = loader(val, config.batch_size, shuffle=False) if val is not None else None
    with tempfile.TemporaryDirectory(prefix="memecat-") as tmp:
        log_dir = Path(log_dir or tmp)
        callbacks = []
        checkpoint = None
        if val_loader is not None and config.early_stopping:
            checkpoint = ModelCheckpoint(dirpath=log_dir / "checkpoints", monitor=MONITOR, mode="max",
                                         save_top_k=1, save_weights_only=True, filename="best")
            callbacks = [checkpoint, EarlyStopping(monitor=MONITOR, mode="max", patience=config.patience)]
        trainer = L.Trainer(
            accelerator="cpu",
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            max_epochs=config.max_epochs,
            callbacks=callbacks,
            logger=CSVLogger(log_dir, name="logs"),
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=True,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            enable_checkpointing=checkpoint is not None,
        )
        trainer.fit(module, train_loader, val_loader)
        if checkpoint is not None and checkpoint.best_model_path and os.path.exists(checkpoint.best_model_path):
            best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            module.load_state_dict(best["state_dict"])
        module.trainer_global_rank = trainer.global_rank
    return module
