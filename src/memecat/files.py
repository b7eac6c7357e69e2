"""Atomic file output shared by model folders and prediction files (no torch import)."""

from __future__ import annotations

import os
from pathlib import Path


def publish(tmp: str | Path, path: Path) -> None:
    """Move a finished temp file into place, readable by all: tempfile and safetensors create private
    files, and model folders and predictions are meant to be shared (a service may run as another user)."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
