"""One training loop for every neural model, built on Lightning."""

from memecat.training.loop import TrainerOptions, ValidationScored, fit_module, seed_everything

__all__ = ["TrainerOptions", "ValidationScored", "fit_module", "seed_everything"]
