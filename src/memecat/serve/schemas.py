"""The JSON the service answers, described field by field for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """Every error answer: one line saying what was wrong."""

    detail: str = Field(description="what was wrong, in one line")


class Category(BaseModel):
    score: float = Field(ge=0, le=1, description="the model's score for this label, 0-1")
    threshold: float | None = Field(
        description="the score at or above which the label is flagged (multi-label tasks); null on single-label "
                    "tasks, where the one flagged label is the highest score after the model's class offsets")
    flagged: bool = Field(description="whether the model assigns this label")


class ModelIdentity(BaseModel):
    model_id: str = Field(description="hash of the served model folder: equal ids, identical models")
    model_type: str = Field(description="linear-probe, label-attention, simre or majority")
    task: str = Field(description="semeval-t6, harm-c-2, harm-c-3 or harm-c-target")
    memecat_version: str = Field(description="version of the memecat that answered")


class Prediction(ModelIdentity):
    id: str = Field(description="the meme's id: the given id, else the image file's name without suffix, "
                                "else 'upload'")
    labels: list[str] = Field(description="the flagged labels, in the task's label order")
    flagged: bool = Field(description="whether any label is flagged")
    categories: dict[str, Category] = Field(description="per label, in the task's label order: score, "
                                                        "threshold and decision")
    scores: dict[str, float] = Field(description="per label, the score alone (the same as categories[*].score)")
    explanation: dict[str, Any] | None = Field(
        description="per label, the model's explanation when asked for (explain=true), else null: 'tokens' (words "
                    "and weights), 'image_grid' (7x7 attention) or 'views' (per-view scores), as the model gives")


class BatchItem(BaseModel):
    index: int = Field(description="position of the meme in the request, from 0")
    id: str = Field(description="the meme's id")
    status: int = Field(description="HTTP status this meme alone would have got: 200, 413, 415 or 422")
    prediction: Prediction | None = Field(description="the answer when status is 200, else null")
    error: str | None = Field(description="what was wrong with this meme when status is not 200, else null")


class BatchPrediction(ModelIdentity):
    results: list[BatchItem] = Field(description="one entry per meme, in request order")


class Health(BaseModel):
    status: str = Field(description="'ok' while the process serves requests")
    task: str = Field(description="the served model's task")
    model_type: str = Field(description="the served model's type")
    model_id: str = Field(description="hash of the served model folder")
    auth_required: bool = Field(description="whether the scoring endpoints need an Authorization: Bearer key")
    max_upload_bytes: int = Field(description="largest image accepted, in bytes")
    max_text_chars: int = Field(description="longest meme text accepted, in characters")
    max_batch_items: int = Field(description="most memes accepted in one batch request")


class Readiness(BaseModel):
    status: str = Field(description="'ready', 'warming up' or 'failed'")
    detail: str | None = Field(default=None, description="why the model is not ready, when it is not")


class Labels(BaseModel):
    task: str = Field(description="the served model's task")
    multi_label: bool = Field(description="whether a meme may have several labels (else exactly one)")
    labels: list[str] = Field(description="the task's labels, in score order")
    thresholds: list[float] | None = Field(description="per-label decision thresholds of a multi-label model")
    class_offsets: list[float] | None = Field(
        description="a single-label model's offsets, added to the log scores before the argmax")


class ModelCard(Labels):
    model_id: str = Field(description="hash of the served model folder")
    model_type: str = Field(description="linear-probe, label-attention, simre or majority")
    task_description: str = Field(description="what the task's labels are")
    encoders: dict[str, str] | None = Field(description="the text and image encoders the model reads, if any")
    training_data: dict[str, int] = Field(description="memes learnt from, per source ('own': the task's data)")
    recipe: str | None = Field(description="the shipped recipe the model was built from, if any")
    metrics: dict[str, dict[str, float | int | str]] = Field(description="figures recorded in the model card")
    trained_with: str | None = Field(description="memecat version that wrote the folder")
    memecat_version: str = Field(description="memecat version serving it")
    limits: dict[str, float | int] = Field(description="the server's request limits and batching settings")
