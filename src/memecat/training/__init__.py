"""One training loop for every neural model, built on Lightning."""

from memecat.training.loop import TrainerOptions, ValidationScored, fit_module, param_groups, seed_everything

__all__ = ["TrainerOptions", "ValidationScored", "fit_module", "param_groups", "seed_everything"]
