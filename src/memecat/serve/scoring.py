"""Scoring a batch of memes in the inference thread: one model call for the batch, per-meme answers and errors.

A meme whose image cannot be decoded fails alone: the model names it (DataError's record id), it is set
aside and the rest of the batch is scored again. Explanations are computed only for memes that asked.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from memecat import __version__
from memecat.data.images import ImageTooLarge
from memecat.data.meme import Meme
from memecat.errors import DataError
from memecat.models.base import MemeModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreRequest:
    """One meme to score. `name` is what error messages call it (the uploaded file's name, or its id)."""

    id: str
    text: str
    image: bytes | None
    name: str
    explain: bool = False
    pixels: int = 0  # what the image decodes to, at most (from its header)


class ItemError(Exception):
    """A meme that could not be scored, with the HTTP status it maps to and a one-line reason."""

    def __init__(self, status: int, detail: str, id: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.id = id  # the meme's id, when known


def plain(value: Any) -> Any:
    """Explanations as JSON-ready Python values, whatever numpy types a model put in them."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _warm_up_image() -> bytes:
    """A small gradient PNG: enough to run the image encoder's whole path once."""
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[::-1][None, :]), axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


class Scorer:
    """Turns ScoreRequests into answers with one model; called from one thread at a time."""

    def __init__(self, model: MemeModel, model_id: str, max_call_pixels: int = 48_000_000):
        self.model = model
        self.max_call_pixels = max_call_pixels
        self.identity = {"model_id": model_id, "model_type": model.model_type, "task": model.task.name,
                         "memecat_version": __version__}
        self.ready = threading.Event()
        self.failure: str | None = None

    # --- start-up -------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Score a text-only and an image meme, explanations included: loads encoders, exports or opens the
        ONNX sessions and fills lazy caches, so the first client is not the one who waits."""
        try:
            memes = [Meme("warm-up-text", "warm up"), Meme("warm-up-image", "", image=_warm_up_image())]
            self.model.decide(self.model.predict_proba(memes))
            self.model.explain(memes)
        except Exception as exc:  # reported by /readyz and logged
            self.failure = f"warm-up failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            log.exception("memecat: model warm-up failed")
            return
        self.ready.set()

    # --- scoring --------------------------------------------------------------------------------
    def __call__(self, requests: Sequence[ScoreRequest]) -> list[dict | Exception]:
        """Answers in order. Memes go to the model in calls of at most `max_call_pixels` decoded pixels: the
        decoder works on a call's images together, so a batch of huge images is decoded a few at a time."""
        outcomes: list[dict | Exception] = []
        for group in pixel_groups(requests, self.max_call_pixels):
            outcomes.extend(self._score(group))
        return outcomes

    def _score(self, requests: Sequence[ScoreRequest]) -> list[dict | Exception]:
        memes = [Meme(id=f"#{i}", text=r.text, image=r.image) for i, r in enumerate(requests)]
        outcomes: list[Any] = [None] * len(requests)
        proba = _isolating(self.model.predict_proba, memes, outcomes, requests)
        wanted = [i for i in proba if requests[i].explain]
        explanations = (_isolating(self.model.explain, [memes[i] for i in wanted], outcomes, requests, indices=wanted)
                        if wanted else {})
        scored = [i for i in proba if outcomes[i] is None]
        if scored:
            decisions = self.model.decide(np.stack([proba[i] for i in scored]))
            for i, decided in zip(scored, decisions):
                outcomes[i] = self.answer(requests[i], proba[i], decided, explanations.get(i))
        return outcomes

    def answer(self, request: ScoreRequest, scores: np.ndarray, decided: np.ndarray, explanation: Any) -> dict:
        labels = self.model.task.labels
        multi = self.model.task.multi_label
        thresholds = self.model.thresholds
        categories = {label: {"score": round(float(s), 4),
                              "threshold": round(float(thresholds[j]), 4) if multi else None,
                              "flagged": bool(decided[j])}
                      for j, (label, s) in enumerate(zip(labels, scores))}
        flagged = [label for label, c in categories.items() if c["flagged"]]
        return {"id": request.id, **self.identity, "labels": flagged, "flagged": bool(flagged),
                "categories": categories, "scores": {label: c["score"] for label, c in categories.items()},
                "explanation": plain(explanation) if request.explain else None}


def pixel_groups(requests: Sequence[ScoreRequest], budget: int) -> list[list[ScoreRequest]]:
    """Consecutive runs of requests whose pixels add up to at most `budget` (a larger image alone)."""
    groups: list[list[ScoreRequest]] = []
    used = 0
    for request in requests:
        if not groups or used + request.pixels > budget:
            groups.append([])
            used = 0
        groups[-1].append(request)
        used += request.pixels
    return groups


def _as_item_error(exc: DataError, request: ScoreRequest) -> ItemError:
    return ItemError(413 if isinstance(exc, ImageTooLarge) else 422, f"{request.name}: {exc.problem}")


def _isolating(fn: Callable[[list[Meme]], Any], memes: list[Meme], outcomes: list, requests: Sequence[ScoreRequest],
               indices: list[int] | None = None) -> dict[int, Any]:
    """fn over `memes` (rows of `requests` at `indices`), keyed by request index. A DataError naming one meme
    sets that meme's outcome and fn runs again on the rest; any other failure runs fn meme by meme, so one
    bad meme never fails its neighbours."""
    indices = list(range(len(memes))) if indices is None else indices
    at = {meme.id: i for meme, i in zip(memes, indices)}
    todo = list(zip(indices, memes))
    while todo:
        try:
            rows = fn([m for _, m in todo])
            return {i: row for (i, _), row in zip(todo, rows)}
        except DataError as exc:
            culprit = at.get(exc.record_id)
            if culprit is not None:  # named: set it aside, score the rest
                outcomes[culprit] = _as_item_error(exc, requests[culprit])
                todo = [(i, m) for i, m in todo if i != culprit]
                continue
            if len(todo) == 1:
                outcomes[todo[0][0]] = _as_item_error(exc, requests[todo[0][0]])
                return {}
        except Exception:
            if len(todo) == 1:
                name = requests[todo[0][0]].name
                log.exception("memecat: scoring meme %r failed", name)
                outcomes[todo[0][0]] = ItemError(500, f"{name}: internal error while scoring")
                return {}
        return _one_by_one(fn, todo, outcomes, requests)
    return {}


def _one_by_one(fn, todo: list[tuple[int, Meme]], outcomes: list, requests: Sequence[ScoreRequest]) -> dict[int, Any]:
    found = {}
    for i, meme in todo:
        found.update(_isolating(fn, [meme], outcomes, requests, indices=[i]))
    return found
