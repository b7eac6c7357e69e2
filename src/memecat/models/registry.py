"""Models by name; imported lazily so the CLI starts fast."""

from __future__ import annotations

import importlib

from memecat.errors import MemecatError

MODEL_TYPES = {
    "majority": "memecat.models.majority:MajorityModel",
    "linear-probe": "memecat.models.linear_probe:LinearProbe",
    "label-attention": "memecat.models.label_attention:LabelAttentionEnsemble",
    "simre": "memecat.models.simre:SimReModel",
}


def model_class(name: str):
    if name not in MODEL_TYPES:
        raise MemecatError(f"unknown model {name!r}; known models: {', '.join(MODEL_TYPES)}")
    module, attr = MODEL_TYPES[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise MemecatError(f"model {name!r} is not available in this build of memecat") from None
        raise
