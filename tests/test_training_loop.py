"""The shared loop: early stopping restores the best epoch; without it the last epoch's weights are kept."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from memecat.training import ValidationScored, fit_module
from memecat.training.loop import TrainerOptions


class Counter(ValidationScored):
    """One weight that grows by 1 per epoch; its validation score is best after the first epoch."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return -self.w.sum()  # SGD with lr 1: +1 per step, one step per epoch

    def validation_step(self, batch, batch_idx):
        self.collect(self.w.detach().expand(len(batch[0]), 1), batch[0])

    def score(self, labels: np.ndarray, proba: np.ndarray) -> float:
        return -abs(float(proba[0, 0]) - 1.0)  # peaks when w == 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1.0)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=4)


def test_early_stopping_restores_the_best_epoch():
    module = fit_module(Counter(), loader(), loader(), TrainerOptions(max_epochs=6, patience=2, progress=False))
    assert module.w.item() == 1.0


def test_without_early_stopping_the_last_epoch_is_kept():
    options = TrainerOptions(max_epochs=6, patience=2, early_stopping=False, progress=False)
    module = fit_module(Counter(), loader(), loader(), options)
    assert module.w.item() == 6.0
