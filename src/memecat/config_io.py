"""Model configs: a YAML/JSON file validated by the model's pydantic config class."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from memecat.errors import MemecatError
from memecat.models.base import ModelConfig


def load_config(config_class: type[ModelConfig], path: str | Path | None = None, **overrides) -> ModelConfig:
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise MemecatError(f"{path}: config file not found")
        try:
            text = path.read_text(encoding="utf-8")
            values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise MemecatError(f"{path}: malformed config ({str(exc).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise MemecatError(f"{path}: config must be a mapping of option: value")
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_class(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        source = f"{path}: " if path else ""
        raise MemecatError(f"{source}config option {where!r}: {first['msg']}") from None
