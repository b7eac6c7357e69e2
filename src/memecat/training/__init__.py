"""How neural models are trained: one loop, one TrainConfig, one objective (LightningModule) per model."""

from memecat.training.config import TrainConfig

__all__ = ["TrainConfig"]
