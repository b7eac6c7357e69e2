"""Named recipes: a model and its options, shipped as YAML files beside this module.

A recipe file holds `model`, a one-line `description`, `config` (the model's options; a neural model's
training options under `config.train`) and optionally `figures` (held-out figures measured for it, which model
cards quote). `--recipe` takes a shipped name or the path of such a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from memecat.errors import MemecatError

SHIPPED = Path(__file__).parent


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str | None
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, dict[str, str]] = field(default_factory=dict)


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise MemecatError(f"{path}: cannot read recipe ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise MemecatError(f"{path}: malformed recipe ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise MemecatError(f"{path}: a recipe is a mapping with model, description and config")
    unknown = set(values) - {"model", "description", "config", "figures"}
    if unknown:
        raise MemecatError(f"{path}: unknown recipe key(s) {', '.join(sorted(unknown))}; "
                           "model options go under 'config:'")
    if not isinstance(values.get("config", {}) or {}, dict):
        raise MemecatError(f"{path}: 'config' must be a mapping of option: value")
    return values


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name, or a recipe file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SHIPPED / f"{name_or_path}.yaml"
        if not path.exists():
            raise MemecatError(f"unknown recipe {str(name_or_path)!r}; shipped recipes: "
                               f"{', '.join(r.name for r in list_recipes())} (or give a recipe file's path)")
    elif not path.exists():
        raise MemecatError(f"{path}: recipe file not found")
    values = _read(path)
    return Recipe(path.stem, values.get("model"), str(values.get("description", "")).strip(),
                  dict(values.get("config") or {}), dict(values.get("figures") or {}))


def list_recipes() -> list[Recipe]:
    return [load_recipe(path) for path in sorted(SHIPPED.glob("*.yaml"))]


def build_config(config_class: type[BaseModel], values: dict[str, Any], source: str | Path | None = None):
    """The model's config from option values; a wrong option is one line naming it."""
    try:
        return config_class(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MemecatError(f"{f'{source}: ' if source else ''}config option {where!r}: {first['msg']}") from None
