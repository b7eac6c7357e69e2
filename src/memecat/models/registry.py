"""One registry of models: `@register_model(name)` beside each model class, `create_model` to build one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memecat.errors import MemecatError

if TYPE_CHECKING:
    from memecat.features import FeatureExtractor
    from memecat.models.base import MemeModel
    from memecat.tasks import Task

# Where the built-in models live: a model's module is imported when the model is asked for, so loading a probe
# never imports the neural models (PyTorch, Lightning), and `memecat --help` imports none.
BUILTIN_MODULES = {"majority": "memecat.models.majority", "linear-probe": "memecat.models.linear_probe",
                   "label-attention": "memecat.models.label_attention", "simre": "memecat.models.simre"}
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


def model_names() -> list[str]:
    for module in BUILTIN_MODULES.values():
        importlib.import_module(module)
    return sorted(_MODELS)


def model_class(name: str) -> type[MemeModel]:
    if name not in _MODELS and name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name])
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
