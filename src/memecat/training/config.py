"""How a neural model is trained, apart from what shapes it: read by the one training loop."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TrainConfig(BaseModel):
    """Options of the training loop. Each model subclasses it with its own defaults, so a recipe that sets
    one option keeps the model's defaults for the rest."""

    model_config = ConfigDict(extra="forbid")
    max_epochs: int = 10
    early_stopping: bool = True  # keep the epoch with the best validation score; False: the last epoch
    patience: int = 4  # epochs without improvement before stopping early
    lr: float = 1e-3  # the model's own layers
    text_lr: float = 5e-5  # fine-tuned text-encoder layers, if any
    weight_decay: float = 0.0
    lr_step_epochs: int | None = None  # StepLR: multiply the rates by lr_gamma every this many epochs
    lr_gamma: float = 0.5
    batch_size: int = 32
    # Lightning's distribution across processes and machines (DDP); CPU only.
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
