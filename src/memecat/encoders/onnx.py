"""An exported encoder in ONNX Runtime: numpy in, numpy out, no PyTorch."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np


def cpu_threads() -> int:
    """The cores this process may use, or OMP_NUM_THREADS when set (as PyTorch reads it)."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxRunner:
    """One session over an exported encoder: `runner(*inputs)` -> (token or grid features, pooled). The session
    opens on first use, so an encoder that a call never needs (no meme has an image) costs nothing."""

    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads or cpu_threads()
        self._session = None
        self._lock = threading.Lock()

    @property
    def session(self):
        with self._lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3  # errors only
                # Idle worker threads sleep instead of spinning: the image and text encoders and the image
                # decoders share the cores, and a spinning pool takes cycles from the others.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = onnxruntime.InferenceSession(str(self.path), options,
                                                             providers=["CPUExecutionProvider"])
            return self._session

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        session = self.session
        names = [node.name for node in session.get_inputs()]
        first, pooled = session.run(None, dict(zip(names, inputs)))
        return first, pooled
