"""Who answers: a model's id (bulk prediction's hash of its folder) and its description for GET /v1/model."""

from __future__ import annotations

from memecat import __version__
from memecat.models.base import EncoderConfig, MemeModel
from memecat.predict.model_id import model_id

__all__ = ["UNSAVED_MODEL_ID", "decision_rule", "describe", "model_id"]

UNSAVED_MODEL_ID = "unsaved"  # a model served straight from memory, with no folder to hash


def decision_rule(model: MemeModel) -> tuple[list[float] | None, list[float] | None]:
    """(thresholds, class_offsets): a multi-label model's per-label thresholds, else a single-label one's offsets."""
    if model.task.multi_label:
        return [round(float(t), 4) for t in model.thresholds], None
    return None, [round(float(o), 4) for o in model.class_offsets]


def describe(model: MemeModel, model_id: str, folder_meta: dict | None = None) -> dict:
    """The model as GET /v1/model shows it: task, labels, decision rule, encoders, training data, figures."""
    meta = folder_meta or {}
    thresholds, offsets = decision_rule(model)
    encoders = None
    if isinstance(model.config, EncoderConfig):
        encoders = {"text": model.config.text_encoder, "image": model.config.image_encoder}
    return {
        "model_id": model_id,
        "model_type": model.model_type,
        "task": model.task.name,
        "task_description": model.task.description,
        "multi_label": model.task.multi_label,
        "labels": list(model.task.labels),
        "thresholds": thresholds,
        "class_offsets": offsets,
        "encoders": encoders,
        "training_data": dict(model.training_data),
        "recipe": model.recipe,
        "metrics": {where: dict(scores) for where, scores in (model.metrics or {}).items()},
        "trained_with": meta.get("memecat_version"),
        "memecat_version": __version__,
    }
