"""The shared loop: early stopping restores the best epoch; without it the last epoch's weights are kept."""

from __future__ import annotations

import random

import numpy as np
import torch

from memecat.training import TrainConfig
from memecat.training.loop import ValidationScored, fit_module, seeded


class Counter(ValidationScored):
    """One weight that grows by 1 per epoch; its validation score is best after the first epoch."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return -self.w.sum()  # SGD with lr 1: +1 per step, one step per epoch

    def validation_step(self, batch, batch_idx):
        self.collect(self.w.detach().expand(len(batch["x"]), 1), batch["x"])

    def score(self, labels: np.ndarray, proba: np.ndarray) -> float:
        return -abs(float(proba[0, 0]) - 1.0)  # peaks when w == 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1.0)


ROWS = {"x": torch.zeros(4, 1)}


def test_early_stopping_restores_the_best_epoch():
    module = fit_module(Counter(), ROWS, ROWS, TrainConfig(max_epochs=6, patience=2, batch_size=4), seed=0,
                        progress=False)
    assert module.w.item() == 1.0


def test_without_early_stopping_the_last_epoch_is_kept():
    config = TrainConfig(max_epochs=6, patience=2, early_stopping=False, batch_size=4)
    module = fit_module(Counter(), ROWS, ROWS, config, seed=0, progress=False)
    assert module.w.item() == 6.0


def test_seeding_repeats_inside_and_leaves_the_callers_generators_alone():
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    expected = torch.rand(1), np.random.rand(), random.random()
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    with seeded(7):
        first = torch.rand(1)
    with seeded(7):
        assert torch.equal(torch.rand(1), first)
    assert (torch.rand(1), np.random.rand(), random.random()) == expected
