"""One registry of models: `@register_model(name)` beside each model class, `create_model` to build one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memecat.errors import MemecatError

if TYPE_CHECKING:
    from memecat.features import FeatureExtractor
    from memecat.models.base import MemeModel
    from memecat.tasks import Task

# Modules whose classes register themselves on import; imported on first lookup so `memecat --help` stays fast.
BUILTIN_MODULES = ("memecat.models.majority", "memecat.models.linear_probe", "memecat.models.label_attention",
                   "memecat.models.simre")
_MODELS: dict[str, type[MemeModel]] = {}


def register_model(name: str):
    """Class decorator: the model answers to `name` in create_model, recipes, the CLI and saved folders."""

    def register(cls):
        if _MODELS.get(name, cls) is not cls:
            raise ValueError(f"model name {name!r} is taken by {_MODELS[name].__name__}")
        cls.model_type = name
        _MODELS[name] = cls
        return cls

    return register


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def model_names() -> list[str]:
    _load_builtins()
    return sorted(_MODELS)


def model_class(name: str) -> type[MemeModel]:
    _load_builtins()
    if name not in _MODELS:
        raise MemecatError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    return _MODELS[name]


def create_model(name: str, task: str | Task, features: FeatureExtractor | None = None, **config: Any) -> MemeModel:
    """An unfitted model by its registry name, for a task (by name or Task), with config options as keywords
    (a `train` mapping holds a neural model's training options)."""
    from memecat.recipes import build_config
    from memecat.tasks import Task, get_task

    cls = model_class(name)
    return cls(task if isinstance(task, Task) else get_task(task), build_config(cls.config_class, config), features)
