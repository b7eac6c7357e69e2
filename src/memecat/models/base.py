"""What every memecat model is: fit / predict_proba / predict, saved to and loaded from one folder.

A model folder holds `config.json` (format version, model type, task, labels, thresholds or class offsets, encoder
names, the resolved config) and `model.safetensors`; an ensemble keeps its members in `members/N/`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memecat import __version__
from memecat.data.meme import Meme
from memecat.errors import MemecatError
from memecat.files import atomic_path, write_json
from memecat.models.thresholds import log_scores
from memecat.tasks import Task, get_task

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ModelConfig(BaseModel):
    """Base of every model's config: strict, so a misspelt key in --config is an error."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    # Extra training sources (memecat.data.sources) added to the task's own memes, and each source's sample
    # weight relative to an own meme (the source's default when not named). Never scored: held-out figures are
    # the task's own.
    extra_data: tuple[str, ...] = ()
    source_weights: dict[str, float] = {}


class MemeModel:
    """Base class. Subclasses implement fit, predict_proba, and state (tensors) save/load."""

    model_type: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, task: Task, config: ModelConfig | None = None):
        self.task = task
        self.config = config or self.config_class()
        # Per-label decision thresholds for multi-label tasks; single-label tasks take the argmax of the log
        # scores plus per-class offsets (zeros unless the model chose some on held-out memes).
        self.thresholds = np.full(task.num_labels, 0.5, dtype=np.float32)
        self.class_offsets = np.zeros(task.num_labels, dtype=np.float32)
        self.training_data: dict[str, int] = {}  # memes learnt from, per source ("own": the task's data)

    def note_training_data(self, memes: list[Meme]) -> None:
        """Record how many memes of each source the model learns from (saved in the model folder)."""
        counts = Counter(m.source or "own" for m in memes)
        self.training_data = dict(sorted(counts.items(), key=lambda kv: (kv[0] != "own", kv[0])))

    def sample_weights(self, memes: list[Meme]) -> np.ndarray:
        """Per meme: 1 for the task's own; for an extra source's, the config's weight or else the source's own."""
        from memecat.data.sources import default_weight

        weights = self.config.source_weights
        return np.array([1.0 if m.source is None else weights.get(m.source, default_weight(m.source)) for m in memes],
                        dtype=np.float32)

    # --- the verbs -------------------------------------------------------------------------
    def fit(self, train: list[Meme], val: list[Meme] | None = None) -> MemeModel:
        raise NotImplementedError

    def predict_proba(self, memes: list[Meme]) -> np.ndarray:
        """[N, num_labels] scores in [0, 1]."""
        raise NotImplementedError

    def explain(self, memes: list[Meme]) -> list[dict]:
        """Per-meme explanation, keyed by label. Models without one return empty dicts."""
        return [{} for _ in memes]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Scores -> 0/1 decisions [N, L]."""
        if self.task.multi_label:
            return (proba >= self.thresholds[None, :]).astype(np.int64)
        out = np.zeros_like(proba, dtype=np.int64)
        out[np.arange(len(proba)), (log_scores(proba) + self.class_offsets).argmax(axis=1)] = 1
        return out

    def predict(self, memes: list[Meme], explain: bool = False) -> list[dict]:
        """One record per meme: {"id", "labels"} (+ "scores" and "explanation" with explain=True)."""
        proba = self.predict_proba(memes)
        decisions = self.decide(proba)
        records = [{"id": m.id, "labels": self.task.decode(d)} for m, d in zip(memes, decisions)]
        if explain:
            explanations = self.explain(memes)
            for record, p, e in zip(records, proba, explanations):
                record["scores"] = {label: round(float(s), 4) for label, s in zip(self.task.labels, p)}
                record["explanation"] = e
        return records

    # --- the folder ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def extra_metadata(self) -> dict:
        """Anything beyond config and thresholds the model needs to rebuild itself (e.g. encoder names)."""
        return {}

    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if state:
            with atomic_path(directory / WEIGHTS_FILE) as tmp:
                save_file(state, str(tmp))
        write_json(directory / CONFIG_FILE, {
            "format_version": FORMAT_VERSION,
            "memecat_version": __version__,
            "model_type": self.model_type,
            "task": self.task.name,
            "labels": list(self.task.labels),
            "thresholds": [float(t) for t in self.thresholds],
            **({} if self.task.multi_label else {"class_offsets": [float(o) for o in self.class_offsets]}),
            "config": self.config.model_dump(mode="json"),
            "training_data": self.training_data,
            **self.extra_metadata(),
        })
        return directory

    @classmethod
    def _from_metadata(cls, task: Task, config: ModelConfig, meta: dict, directory: Path) -> MemeModel:
        return cls(task, config)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> MemeModel:
        return load_model(directory)


def read_model_metadata(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise MemecatError(f"{directory}: model folder not found")
    if not path.exists():
        raise MemecatError(f"{path}: not a memecat model folder (no {CONFIG_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MemecatError(f"{path}: damaged model config ({exc})") from None
    if not isinstance(meta, dict) or "model_type" not in meta:
        raise MemecatError(f"{path}: damaged model config (no model_type)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise MemecatError(
            f"{path}: model folder format {meta.get('format_version')!r} from memecat "
            f"{meta.get('memecat_version', '?')}; this memecat {__version__} reads format {FORMAT_VERSION}"
        )
    return meta


def load_model(directory: str | Path) -> MemeModel:
    """Load any memecat model folder, offline, with nothing but the folder and the installed package."""
    from memecat.models.registry import model_class

    directory = Path(directory)
    meta = read_model_metadata(directory)
    cls = model_class(meta["model_type"])
    task = get_task(meta["task"])
    if list(task.labels) != meta.get("labels"):
        raise MemecatError(f"{directory / CONFIG_FILE}: label list differs from task {task.name}'s")
    try:
        config = cls.config_class(**meta.get("config", {}))
    except (ValidationError, TypeError) as exc:  # a config from another version
        raise MemecatError(f"{directory / CONFIG_FILE}: config does not fit this memecat ({exc})") from None
    model = cls._from_metadata(task, config, meta, directory)
    model.thresholds = np.asarray(meta.get("thresholds", model.thresholds), dtype=np.float32)
    model.class_offsets = np.asarray(meta.get("class_offsets", model.class_offsets), dtype=np.float32)
    model.training_data = meta.get("training_data", {})
    weights = directory / WEIGHTS_FILE
    if weights.exists():
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise MemecatError(f"{weights}: damaged weights file ({exc})") from None
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # shapes or names from another memecat version (e.g. other prompts)
            reason = str(exc).strip().splitlines()[-1].strip()
            raise MemecatError(f"{weights}: weights do not fit this memecat's {cls.model_type} ({reason})") from None
    return model
