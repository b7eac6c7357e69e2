"""The shared loop: Lightning brings checkpoints, early stopping, progress bars, CSV logs, seeding and DDP.

A model contributes a LightningModule whose `validation_step` returns nothing and which logs
`val_score` (the task's primary metric) in `on_validation_epoch_end`; everything else is here.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

MONITOR = "val_score"


@dataclass
class TrainerOptions:
    max_epochs: int = 30
    patience: int = 6
    early_stopping: bool = True  # False: train max_epochs and keep the last weights (validation is still logged)
    seed: int = 0
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    log_dir: str | None = None  # CSV logs and checkpoints; a temp folder when None
    progress: bool | None = None  # None: only on a terminal


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


def param_groups(net: torch.nn.Module, lr: float, text_lr: float) -> list[dict]:
    """Optimiser groups: the net's own layers at `lr`, its fine-tuned text-encoder layers (`net.text_top`, if
    any) at `text_lr`."""
    head = [p for n, p in net.named_parameters() if not n.startswith("text_top.")]
    groups = [{"params": head, "lr": lr}]
    if net.text_top is not None:
        groups.append({"params": list(net.text_top.parameters()), "lr": text_lr})
    return groups


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs at once: call before building a model so its initial weights repeat."""
    L.seed_everything(seed, workers=True, verbose=False)


def fit_module(module: L.LightningModule, train_loader: DataLoader, val_loader: DataLoader | None,
               options: TrainerOptions) -> L.LightningModule:
    """Train `module` and return it with the weights of its best epoch by validation score (early stopping)
    or of its last epoch."""
    quiet_lightning()
    seed_everything(options.seed)
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    with tempfile.TemporaryDirectory(prefix="memecat-") as tmp:
        log_dir = Path(options.log_dir or tmp)
        callbacks = []
        checkpoint = None
        if val_loader is not None and options.early_stopping:
            checkpoint = ModelCheckpoint(dirpath=log_dir / "checkpoints", monitor=MONITOR, mode="max",
                                         save_top_k=1, save_weights_only=True, filename="best")
            callbacks = [checkpoint, EarlyStopping(monitor=MONITOR, mode="max", patience=options.patience)]
        trainer = L.Trainer(
            accelerator="cpu",
            devices=options.devices,
            num_nodes=options.num_nodes,
            strategy=options.strategy,
            max_epochs=options.max_epochs,
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
