"""HTTP API for one loaded model: POST a meme's image, its text or both, get categories, scores and explanation.

Limits are enforced before work is done: the request body is capped while it streams in (never read
unbounded into memory), the image type is judged by its bytes, and a corrupt image is refused with the
decoder's message. Inference runs in the threadpool, one request at a time per model (torch modules are
not guaranteed thread-safe).
"""

from __future__ import annotations

import threading
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from memecat import __version__
from memecat.data.images import sniff_image_type
from memecat.data.meme import Meme
from memecat.errors import DataError
from memecat.models.base import MemeModel, load_model

STATIC = Path(__file__).with_name("static")
MiB = 1024 * 1024
# Pillow's format names for the accepted types; MPO is what Pillow calls many camera JPEGs.
ALLOWED_TYPES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the image and the text


class Prediction(BaseModel):
    id: str
    labels: list[str]
    scores: dict[str, float]
    explanation: dict[str, Any]
    task: str
    model_type: str


class Health(BaseModel):
    status: str
    task: str
    model_type: str
    max_upload_bytes: int
    max_text_chars: int


class Labels(BaseModel):
    task: str
    multi_label: bool
    labels: list[str]
    thresholds: list[float] | None  # per-label decision thresholds of a multi-label model
    class_offsets: list[float] | None  # a single-label model's offsets, added to the log scores before the argmax


class Problem(BaseModel):
    detail: str


class _BodyLimit:
    """Refuse request bodies over `limit` bytes: by Content-Length up front, else as the chunks arrive."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over the {self.limit:,}-byte limit"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            chunk = await receive()
            received += len(chunk.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, message)  # raised inside the endpoint's form parsing
            return chunk

        await self.app(scope, limited_receive, send)


def _plain(value: Any) -> Any:
    """Explanations as JSON-ready Python values, whatever numpy types a model put in them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _upload_spec(max_upload_bytes: int, max_text_chars: int) -> dict:
    """The multipart body, described for OpenAPI (the endpoint parses the form itself to bound it)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "description": "Send the image, the text or both: text alone is a text-only meme, an image with no or "
                       "empty text an image-only one.",
        "properties": {
            "image": {"type": "string", "format": "binary",
                      "description": f"JPEG, PNG, GIF, WebP or BMP, at most {max_upload_bytes:,} bytes; "
                                     "leave out for a text-only meme"},
            "text": {"type": "string", "maxLength": max_text_chars,
                     "description": "the text on the meme; leave out or empty for an image-only meme"},
        },
    }}}}}


def create_app(model: MemeModel, max_upload_bytes: int = 10 * MiB, max_text_chars: int = 5000) -> FastAPI:
    """The API and demo page serving `model`."""
    app = FastAPI(title="memecat", version=__version__, docs_url=None,
                  description=f"Meme categories for task {model.task.name}: {model.task.description}.")
    body_limit = max_upload_bytes + 4 * max_text_chars + FORM_OVERHEAD  # 4: UTF-8 bytes per character at most
    app.add_middleware(_BodyLimit, limit=body_limit)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # FastAPI's /docs page loads Swagger UI from a CDN; serve the bundled copy so it works offline.
    app.mount("/swagger-ui", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="memecat API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

    lock = threading.Lock()

    def predict_one(meme: Meme, name: str) -> dict:
        try:
            with lock:
                record = model.predict([meme], explain=True)[0]
        except DataError as exc:  # named by the uploaded file's name, which is all the client knows it by
            raise HTTPException(422, f"{name}: {exc.problem}") from None
        return {**_plain(record), "task": model.task.name, "model_type": model.model_type}

    def run_model(data: bytes | None, name: str, text: str) -> dict:
        # The upload's bytes go straight to the feature path, which decodes them once; a corrupt image is a 422.
        if data is None:  # a text-only meme
            return predict_one(Meme(id=name, text=text), name)
        return predict_one(Meme(id=PurePath(name).stem or "upload", text=text, image=data), name)

    @app.post("/v1/predict", response_model=Prediction, summary="Categorise one meme",
              openapi_extra=_upload_spec(max_upload_bytes, max_text_chars),
              responses={400: {"model": Problem, "description": "malformed multipart body"},
                         413: {"model": Problem, "description": "image or request too large"},
                         415: {"model": Problem, "description": "not a JPEG, PNG, GIF, WebP or BMP image"},
                         422: {"model": Problem,
                               "description": "neither image nor text, a misused field, bad text or corrupt image"}})
    async def predict(request: Request) -> dict:
        async with request.form(max_files=1, max_fields=4, max_part_size=body_limit) as form:
            image, text = form.get("image"), form.get("text")
            if image == "":  # an empty plain field (curl -F image=) is no image
                image = None
            if image is not None and not isinstance(image, UploadFile):
                raise HTTPException(422, "'image' must be a file upload")
            if text is not None and not isinstance(text, str):
                raise HTTPException(422, "'text' must be a plain form field, not a file")
            text = (text or "").replace("\r\n", "\n")  # browsers send form text with CRLF; the datasets use LF
            if not text.strip():
                text = ""  # an image-only meme
            if len(text) > max_text_chars:
                raise HTTPException(422, f"text is {len(text):,} characters, over the {max_text_chars:,} limit")
            data, name = None, "upload"
            if image is not None:
                data = await image.read(max_upload_bytes + 1)
                if not data and not image.filename:  # a form's file input left empty: no image chosen
                    data = None
                name = image.filename or name
        if data is None:
            if not text:
                raise HTTPException(422, "send the meme's image (file field 'image'), its text (field 'text') "
                                         "or both; got neither")
            return await run_in_threadpool(run_model, None, name, text)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{name}: image over the {max_upload_bytes:,}-byte limit")
        if not data:
            raise HTTPException(422, f"{name}: image file is empty")
        kind = sniff_image_type(data)
        if kind not in ALLOWED_TYPES:
            found = f"a {kind} image" if kind else "not an image"
            raise HTTPException(415, f"{name}: {found}; send JPEG, PNG, GIF, WebP or BMP")
        return await run_in_threadpool(run_model, data, name, text)

    @app.get("/healthz", response_model=Health, summary="Liveness and the model served")
    def healthz() -> dict:
        return {"status": "ok", "task": model.task.name, "model_type": model.model_type,
                "max_upload_bytes": max_upload_bytes, "max_text_chars": max_text_chars}

    @app.get("/v1/labels", response_model=Labels, summary="The model's categories, in score order")
    def labels() -> dict:
        rule = [round(float(t), 4) for t in (model.thresholds if model.task.multi_label else model.class_offsets)]
        return {"task": model.task.name, "multi_label": model.task.multi_label, "labels": list(model.task.labels),
                "thresholds": rule if model.task.multi_label else None,
                "class_offsets": None if model.task.multi_label else rule}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def run_server(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the model folder and serve it until interrupted."""
    import uvicorn

    uvicorn.run(create_app(load_model(model_dir)), host=host, port=port)
