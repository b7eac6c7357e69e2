"""The HTTP API and demo page for one loaded model.

Probes (/healthz, /readyz), /metrics and the model's description are async and never touch the model, so
they answer at once whatever the load. Scoring requests are read and checked on the event loop (bodies
capped, images judged by their headers), queued for the micro-batcher (bounded: 503 when full) and awaited
until the request's deadline (504 after it).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from memecat import __version__
from memecat.models.base import MemeModel, load_model, read_model_metadata
from memecat.serve import openapi
from memecat.serve.auth import bearer_dependency
from memecat.serve.batching import DeadlineExceeded, QueueFull, ShuttingDown
from memecat.serve.body_limit import BodyLimit, single_body_limit
from memecat.serve.metrics import MetricsMiddleware
from memecat.serve.model_info import UNSAVED_MODEL_ID, decision_rule, describe, model_id
from memecat.serve.schemas import BatchPrediction, Health, Labels, ModelCard, Prediction, Readiness
from memecat.serve.scoring import ItemError
from memecat.serve.service import Service
from memecat.serve.settings import ServeSettings
from memecat.serve.uploads import read_batch, read_one

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
EXPLAIN_QUERY = Query(False, description="add the model's per-label explanation (opt-in: it costs time)")


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI, service: Service) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body"))
        return _problem(422, f"{where or 'request'}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return _problem(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(DeadlineExceeded)
    async def too_slow(request: Request, exc: DeadlineExceeded) -> JSONResponse:
        return _problem(504, f"no answer within the {service.settings.timeout_s:g} s deadline; the server is "
                             "busy or the meme is slow to score")

    @app.exception_handler(ShuttingDown)
    async def stopping(request: Request, exc: ShuttingDown) -> JSONResponse:
        return _problem(503, "the server is shutting down", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("memecat: unhandled error on %s", request.url.path, exc_info=exc)
        return _problem(500, "internal error; the server log has the details")


def create_app(model: MemeModel, settings: ServeSettings | None = None, *, model_id: str = UNSAVED_MODEL_ID,
               folder_meta: dict | None = None, **limits: Any) -> FastAPI:
    """The API and demo page serving `model`. `limits` override single settings (e.g. max_upload_bytes=...)."""
    settings = replace(settings or ServeSettings(), **limits)
    service = Service(model, settings, model_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        await service.stop()

    app = FastAPI(title="memecat", version=__version__, docs_url=None, lifespan=lifespan,
                  description=f"Meme categories for task {model.task.name}: {model.task.description}. Model "
                              f"{model.model_type}, id {model_id}.")
    app.state.service = service
    app.add_middleware(BodyLimit, default=single_body_limit(settings),
                       limits={"/v1/predict/batch": settings.max_batch_body_bytes})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, routes=lambda: app.routes)
    _add_error_handlers(app, service)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # FastAPI's /docs page loads Swagger UI from a CDN; serve the bundled copy so it works offline.
    app.mount("/swagger-ui", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    guarded = [bearer_dependency(settings.api_key)] if settings.api_key else []
    auth_errors = (401,) if settings.api_key else ()

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="memecat API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    # --- probes and description: async, never waiting for the model ------------------------------
    @app.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok", "task": model.task.name, "model_type": model.model_type, "model_id": model_id,
                "auth_required": bool(settings.api_key), "max_upload_bytes": settings.max_upload_bytes,
                "max_text_chars": settings.max_text_chars, "max_batch_items": settings.max_batch_items}

    @app.get("/readyz", response_model=Readiness, summary="Readiness: the model is loaded and warmed up",
             responses={503: {"model": Readiness, "description": "still warming up, or the warm-up failed"}})
    async def readyz() -> Any:
        service.start()
        ready, status, detail = service.readiness
        body = {"status": status, "detail": detail}
        return body if ready else JSONResponse(body, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition format"}})
    async def metrics() -> Response:
        body, content_type = service.metrics.scrape()
        return Response(body, media_type=content_type)

    @app.get("/v1/model", response_model=ModelCard, summary="The served model: labels, decision rule, training")
    async def model_card() -> dict:
        limits = {key: getattr(settings, key) for key in ("max_upload_bytes", "max_text_chars", "max_batch_items",
                                                          "max_batch_size", "max_wait_ms", "max_queue", "timeout_s")}
        return {**describe(model, model_id, folder_meta), "limits": limits}

    @app.get("/v1/labels", response_model=Labels, summary="The model's categories, in score order")
    async def labels() -> dict:
        thresholds, offsets = decision_rule(model)
        return {"task": model.task.name, "multi_label": model.task.multi_label, "labels": list(model.task.labels),
                "thresholds": thresholds, "class_offsets": offsets}

    # --- scoring ---------------------------------------------------------------------------------
    @app.post("/v1/predict", response_model=Prediction, summary="Categorise one meme", dependencies=guarded,
              openapi_extra=openapi.single_body(settings),
              responses=openapi.problems(400, *auth_errors, 413, 415, 422, 503, 504))
    async def predict(request: Request, explain: bool = EXPLAIN_QUERY) -> dict:
        deadline = service.deadline()
        try:
            item = await read_one(request, settings, explain)
        except HTTPException as exc:
            if exc.status_code in (413, 415, 422):  # the meme itself was refused
                service.metrics.on_meme(exc.status_code)
            raise
        [outcome] = await service.score([item], deadline)
        service.count([outcome])
        if isinstance(outcome, ItemError):
            raise HTTPException(outcome.status, outcome.detail)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @app.post("/v1/predict/batch", response_model=BatchPrediction, dependencies=guarded,
              summary=f"Categorise up to {settings.max_batch_items} memes: per-meme answers and errors",
              openapi_extra=openapi.batch_body(settings),
              responses=openapi.problems(400, *auth_errors, 413, 415, 422, 503, 504))
    async def predict_batch(request: Request, explain: bool = EXPLAIN_QUERY) -> dict:
        deadline = service.deadline()
        items = await read_batch(request, settings, explain)
        valid = [item for item in items if not isinstance(item, ItemError)]
        scored = iter(await service.score(valid, deadline) if valid else [])
        outcomes = [item if isinstance(item, ItemError) else next(scored) for item in items]
        service.count(outcomes)
        results = []
        for index, (item, outcome) in enumerate(zip(items, outcomes)):
            if isinstance(outcome, ItemError):
                results.append({"index": index, "id": item.id or str(index), "status": outcome.status,
                                "prediction": None, "error": outcome.detail})
            elif isinstance(outcome, Exception):
                raise outcome
            else:
                results.append({"index": index, "id": outcome["id"], "status": 200, "prediction": outcome,
                                "error": None})
        return {**service.identity, "results": results}

    return app


def run_server(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
               settings: ServeSettings | None = None, log_level: str = "info") -> None:
    """Load and verify the model folder (a bad one raises MemecatError before anything listens), then serve
    it until interrupted."""
    import uvicorn

    model = load_model(model_dir)
    app = create_app(model, settings, model_id=model_id(model_dir), folder_meta=read_model_metadata(model_dir))
    uvicorn.run(app, host=host, port=port, log_level=log_level)
