"""The model contract, one for every memecat model:

    model = memecat.create_model("linear-probe", task="semeval-t6")   # unfitted
    model.fit(memes, eval_memes=None)      # eval_memes: for selection and thresholds (see the config)
    model.predict_proba(memes)             # [N, num_labels] scores in [0, 1]
    model.predict(memes)                   # [{"id", "labels"}]
    model.save_pretrained(folder); memecat.load_model(folder)

A model folder holds `config.json` (format version, model type, task, labels, thresholds or class offsets,
the resolved config, training data), `model.safetensors` and a `README.md` model card.

Loading a folder imports only what its model needs: weights are read as numpy arrays, and a model that runs on
numpy and ONNX Runtime (the linear probe, majority) never imports PyTorch; a neural model imports it itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from memecat import __version__
from memecat.data.meme import Meme
from memecat.errors import MemecatError, NotFittedError
from memecat.files import atomic_path, write_json
from memecat.models.thresholds import log_scores
from memecat.tasks import Task, get_task

if TYPE_CHECKING:
    from memecat.features import FeatureExtractor

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


class ModelConfig(BaseModel):
    """Base of every model's config: strict, so a misspelt key in a recipe is an error."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    # Extra training sources (memecat.data.sources) added to the task's own memes, and each source's sample
    # weight relative to an own meme (the source's default when not named). Never scored: held-out figures are
    # the task's own.
    extra_data: tuple[str, ...] = ()
    source_weights: dict[str, float] = {}

    @property
    def trains_on_eval_memes(self) -> bool:
        """Whether `fit` also learns from its `eval_memes` (then a score on them is not a held-out score)."""
        return False

    @property
    def selects_on_eval_memes(self) -> bool:
        """Whether `fit` chooses epochs or thresholds on its `eval_memes` (a score on them is optimistic)."""
        return False


class EncoderConfig(ModelConfig):
    """A model that reads encoder features: encoders by registered name, Hugging Face repo id or local folder."""

    text_encoder: str = "minilm-l6"
    image_encoder: str = "efficientnet-lite0"


class MemeModel:
    """Base class. Subclasses implement `_fit`, `_predict_proba`, `state_dict` and `load_state_dict`."""

    model_type: ClassVar[str]  # set by @register_model
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, task: Task, config: ModelConfig | None = None, features: FeatureExtractor | None = None):
        self.task = task
        self.config = config or self.config_class()
        self._features = features
        # Per-label decision thresholds (multi-label tasks) or per-class offsets on the log scores before the
        # argmax (single-label tasks): set by fit or load, so None means "not fitted".
        self.thresholds: np.ndarray | None = None
        self.class_offsets: np.ndarray | None = None
        self.training_data: dict[str, int] = {}  # memes learnt from, per source ("own": the task's data)
        self.recipe: str | None = None  # the named recipe it was built from, for its model card
        self.metrics: dict[str, dict[str, float]] = {}  # figures known for it (e.g. dev scores), for its card
        self.log_dir: Path | None = None  # where a neural model's training logs go (a temp folder when None)

    @property
    def features(self) -> FeatureExtractor:
        """The feature extractor given at construction, else one for the config's encoders and the default cache."""
        if self._features is None:
            from memecat.features import FeatureExtractor

            self._features = FeatureExtractor.from_names(self.config.text_encoder, self.config.image_encoder)
        return self._features

    @features.setter
    def features(self, features: FeatureExtractor) -> None:
        self._features = features

    # --- training data --------------------------------------------------------------------------
    def note_training_data(self, memes: Sequence[Meme]) -> None:
        """Record how many memes of each source the model learns from (saved in the model folder)."""
        counts = Counter(m.source or "own" for m in memes)
        self.training_data = dict(sorted(counts.items(), key=lambda kv: (kv[0] != "own", kv[0])))

    def sample_weights(self, memes: Sequence[Meme]) -> np.ndarray:
        """Per meme: 1 for the task's own; for an extra source's, the config's weight or else the source's own."""
        from memecat.data.sources import default_weight

        weights = self.config.source_weights
        return np.array([1.0 if m.source is None else weights.get(m.source, default_weight(m.source)) for m in memes],
                        dtype=np.float32)

    # --- the verbs ------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.thresholds is not None

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {self.model_type} model is not fitted yet: call fit(memes) first, or "
                                 "load a fitted one with memecat.load_model(folder)")

    def fit(self, memes: Sequence[Meme], *, eval_memes: Sequence[Meme] | None = None) -> MemeModel:
        """Learn from `memes` (the task's own and any extra source's); `eval_memes` serve selection and
        thresholds, and training too only where `config.trains_on_eval_memes` says so."""
        memes, eval_memes = list(memes), list(eval_memes or [])
        if not memes:
            raise MemecatError(f"{self.model_type}: fit needs at least one meme")
        self.thresholds = np.full(self.task.num_labels, 0.5, dtype=np.float32)
        self.class_offsets = np.zeros(self.task.num_labels, dtype=np.float32)
        try:
            self._fit(memes, eval_memes)
        except BaseException:
            self.thresholds = self.class_offsets = None  # half-trained is not fitted
            raise
        return self

    def predict_proba(self, memes: Sequence[Meme]) -> np.ndarray:
        """[N, num_labels] scores in [0, 1]."""
        self.check_fitted()
        return self._predict_proba(list(memes))

    def explain(self, memes: Sequence[Meme]) -> list[dict]:
        """Per-meme explanation, keyed by label. Models without one return empty dicts."""
        self.check_fitted()
        return self._explain(list(memes))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Scores -> 0/1 decisions [N, L]."""
        self.check_fitted()
        if self.task.multi_label:
            return (proba >= self.thresholds[None, :]).astype(np.int64)
        out = np.zeros_like(proba, dtype=np.int64)
        out[np.arange(len(proba)), (log_scores(proba) + self.class_offsets).argmax(axis=1)] = 1
        return out

    def predict(self, memes: Sequence[Meme], explain: bool = False) -> list[dict]:
        """One record per meme: {"id", "labels"} (+ "scores" and "explanation" with explain=True)."""
        memes = list(memes)
        proba = self.predict_proba(memes)
        records = [{"id": m.id, "labels": self.task.decode(d)} for m, d in zip(memes, self.decide(proba))]
        if explain:
            for record, p, e in zip(records, proba, self.explain(memes)):
                record["scores"] = {label: round(float(s), 4) for label, s in zip(self.task.labels, p)}
                record["explanation"] = e
        return records

    # --- what subclasses implement ------------------------------------------------------------
    def _fit(self, memes: list[Meme], eval_memes: list[Meme]) -> None:
        raise NotImplementedError

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        raise NotImplementedError

    def _explain(self, memes: list[Meme]) -> list[dict]:
        return [{} for _ in memes]

    def state_dict(self) -> dict[str, Any]:
        """Named weights: numpy arrays or PyTorch tensors."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Weights as read from the folder: read-only numpy arrays."""
        raise NotImplementedError

    def extra_metadata(self) -> dict:
        """Anything beyond config and thresholds the model needs to rebuild itself (e.g. its member count)."""
        return {}

    @classmethod
    def _from_metadata(cls, task: Task, config: ModelConfig, meta: dict,
                       features: FeatureExtractor | None) -> MemeModel:
        """An instance ready for `load_state_dict`."""
        return cls(task, config, features)

    # --- the folder ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        from memecat.models.card import model_card

        self.check_fitted()
        directory = Path(directory)
        state = {k: _array(v) for k, v in self.state_dict().items()}
        if state:
            with atomic_path(directory / WEIGHTS_FILE) as tmp:
                save_file(state, str(tmp))
        meta = {
            "format_version": FORMAT_VERSION,
            "memecat_version": __version__,
            "model_type": self.model_type,
            "task": self.task.name,
            "labels": list(self.task.labels),
            "thresholds": [float(t) for t in self.thresholds],
            **({} if self.task.multi_label else {"class_offsets": [float(o) for o in self.class_offsets]}),
            "config": self.config.model_dump(mode="json"),
            "training_data": self.training_data,
            "recipe": self.recipe,
            "metrics": self.metrics,
            **self.extra_metadata(),
        }
        write_json(directory / CONFIG_FILE, meta)
        with atomic_path(directory / CARD_FILE) as tmp:
            tmp.write_text(model_card(meta), encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, features: FeatureExtractor | None = None) -> MemeModel:
        return load_model(directory, features)


def _array(value) -> np.ndarray:
    """A weight as a contiguous numpy array (a PyTorch tensor is detached and moved to the CPU first)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value)


# Options of format 1 that moved into the config's `train` section.
_TRAINING_KEYS = ("lr", "text_lr", "weight_decay", "batch_size", "max_epochs", "patience", "early_stopping",
                  "devices", "num_nodes", "strategy")
# Options of format 1 that no longer exist, with the only value a folder may have kept for them.
_RETIRED = {"levels": "softmax", "mix": "pixel", "text_pooling": "all"}


def _upgrade(meta: dict, path: Path) -> dict:
    """A format-1 config as format 2: training options under `train`, retired options dropped when they hold
    the one value this memecat still implements, SimRe's StepLR options renamed."""
    config = dict(meta.get("config", {}))
    for key, kept in _RETIRED.items():
        if key in config and config.pop(key) != kept:
            raise MemecatError(f"{path}: trained with {key}={meta['config'][key]!r}, which this memecat "
                               f"{__version__} no longer implements")
    train = {key: config.pop(key) for key in _TRAINING_KEYS if key in config}
    if "step_size" in config:
        train["lr_step_epochs"], train["lr_gamma"] = config.pop("step_size"), config.pop("gamma", 0.5)
    if config.get("temperature", 0) is None:  # the per-task rule folders of format 1 carried
        config["temperature"] = 0.2 if meta.get("task") == "semeval-t6" else 0.5
    if train and meta["model_type"] != "linear-probe":
        config["train"] = train
    return {**meta, "config": config, "format_version": FORMAT_VERSION}


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
    if meta.get("format_version") == 1:
        meta = _upgrade(meta, path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise MemecatError(
            f"{path}: model folder format {meta.get('format_version')!r} from memecat "
            f"{meta.get('memecat_version', '?')}; this memecat {__version__} reads format {FORMAT_VERSION}"
        )
    return meta


def load_model(directory: str | Path, features: FeatureExtractor | None = None) -> MemeModel:
    """Load any memecat model folder, offline, with nothing but the folder and the installed package.
    `features` shares one feature extractor (encoders and cache) between models; by default the model builds
    its own for the encoders its config names."""
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
    model = cls._from_metadata(task, config, meta, features)
    for key in ("thresholds", "class_offsets"):
        values = meta.get(key, [0.5 if key == "thresholds" else 0.0] * task.num_labels)
        if not isinstance(values, list) or len(values) != task.num_labels:
            raise MemecatError(f"{directory / CONFIG_FILE}: {key} must be {task.num_labels} numbers, one per label")
        setattr(model, key, np.asarray(values, dtype=np.float32))
    model.training_data = meta.get("training_data", {})
    model.recipe = meta.get("recipe")
    model.metrics = meta.get("metrics") or {}
    weights = directory / WEIGHTS_FILE
    if not weights.exists():  # every model has learnt weights; without them it would answer at random
        raise MemecatError(f"{weights}: weights file missing; the model folder is incomplete")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MemecatError(f"{weights}: damaged weights file ({exc})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:  # names or shapes that are not this model's
        reason = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
        raise MemecatError(f"{weights}: weights do not fit this memecat's {cls.model_type} ({reason})") from None
    return model
