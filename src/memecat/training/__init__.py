"""One training loop for every neural model, built on Lightning."""

from memecat.training.loop import TrainerOptions, fit_module, seed_everything

__all__ = ["TrainerOptions", "fit_module", "seed_everything"]
