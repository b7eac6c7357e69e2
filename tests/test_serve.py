"""The HTTP API: the answer's shape, every 4xx limit, probes, the model's description, OpenAPI and the page.

FakeModel, png_bytes, serve_in_thread and serve_in_subprocess live here and are shared with the other test_serve_* modules,
test_predict_io.py and test_browser.py.
"""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from memecat import __version__
from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.errors import DataError
from memecat.models.base import MemeModel
from memecat.serve import create_app, run_server
from memecat.tasks import get_task


class FakeModel(MemeModel):
    """Deterministic stand-in: scores seeded by the text length, a label-attention explanation per label.

    It reads every image like a real model, so an undecodable one raises DataError. `delay` seconds per model
    call stand in for a slow model; `batches` records how many memes each call scored.
    """

    model_type = "fake"

    def __init__(self, task_name: str = "semeval-t6", delay: float = 0.0):
        super().__init__(get_task(task_name))
        self.seen: list[Path | bytes | None] = []
        self.batches: list[int] = []
        self.delay = delay
        self.thresholds = np.full(self.task.num_labels, 0.5, dtype=np.float32)  # fitted as it is
        self.class_offsets = np.zeros(self.task.num_labels, dtype=np.float32)

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        self.batches.append(len(memes))
        if self.delay:
            time.sleep(self.delay)
        for meme in memes:
            self.seen.append(meme.image)
            if meme.image is not None:
                try:
                    open_image(meme.image)
                except DataError as exc:  # named by its meme, as the feature extractor does
                    raise DataError(exc.path, exc.problem, record_id=meme.id) from None
        # Cubed uniforms: a few labels over the 0.5 threshold, like a real multi-label model.
        return np.stack([np.random.default_rng(len(m.text)).random(self.task.num_labels) ** 3 for m in memes])

    def _explain(self, memes: list[Meme]) -> list[dict]:
        rows, cols = np.mgrid[0:7, 0:7]
        out = []
        for meme in memes:
            words = meme.text.split()
            explanation = {}
            for j, label in enumerate(self.task.labels):
                grid = np.exp(-((rows - (1 + j % 5)) ** 2 + (cols - (5 - j % 4)) ** 2) / 1.5)
                explanation[label] = {
                    "tokens": [{"token": w, "weight": round(1 / (1 + abs(i - j % max(len(words), 1))), 4)}
                               for i, w in enumerate(words)],
                    "image_grid": (grid / grid.sum()).tolist(),
                }
            out.append(explanation)
        return out


def png_bytes(size: int = 32, noise: bool = False) -> bytes:
    pixels = np.full((size, size, 3), 200, dtype=np.uint8)
    if noise:  # incompressible, so the PNG is big
        pixels = np.random.default_rng(0).integers(0, 256, pixels.shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """uvicorn serving `app` on a free port in a thread, lifespan and all: the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bind first and hand uvicorn the socket: no race for a "free" port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serve_in_subprocess(delay: float = 0.0, **settings) -> Iterator[str]:
    """uvicorn serving a FakeModel in a process of its own, so a load generator in the test process shares no
    interpreter lock with the server: the base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import uvicorn; "
            "from test_serve import FakeModel; from memecat.serve import create_app; "
            f"uvicorn.run(create_app(FakeModel(delay={delay!r}), **{settings!r}), host='127.0.0.1', port={port}, "
            "log_level='warning')")
    server = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server process did not start")
            time.sleep(0.05)
        yield base
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def client(model: FakeModel) -> Iterator[TestClient]:
    with TestClient(create_app(model, max_upload_bytes=20_000, max_text_chars=100, warm_up=False)) as client:
        yield client


def post(client: TestClient, image: bytes | None = png_bytes(), text: str | None = "WAKE UP sheeple",
         name: str = "meme.png", **params):
    files = {"image": (name, image, "image/png")} if image is not None else None
    data = {"text": text} if text is not None else None
    return client.post("/v1/predict", files=files, data=data, params=params)


# --- the answer -------------------------------------------------------------------------------------
def test_predict_answers_model_identity_and_per_label_decisions(client: TestClient, model: FakeModel) -> None:
    response = post(client)
    assert response.status_code == 200, response.text
    body = response.json()
    labels = get_task("semeval-t6").labels
    assert (body["id"], body["task"], body["model_type"]) == ("meme", "semeval-t6", "fake")
    assert body["model_id"] == "unsaved" and body["memecat_version"] == __version__
    assert list(body["categories"]) == list(labels) == list(body["scores"])
    for label, category in body["categories"].items():
        assert category["threshold"] == 0.5
        assert category["flagged"] == (category["score"] >= 0.5) == (label in body["labels"])
        assert category["score"] == body["scores"][label]
    assert body["labels"] and body["flagged"] is True
    assert body["explanation"] is None  # opt-in
    # The upload's bytes reached the model as they came: never written to a file.
    assert isinstance(model.seen[-1], bytes) and model.seen[-1].startswith(b"\x89PNG")


@pytest.mark.parametrize("how", ["query", "form"])
def test_explanation_is_opt_in(client: TestClient, how: str) -> None:
    if how == "query":
        response = post(client, explain="true")
    else:
        response = client.post("/v1/predict", files={"image": ("meme.png", png_bytes(), "image/png")},
                               data={"text": "WAKE UP", "explain": "true"})
    assert response.status_code == 200, response.text
    grid = response.json()["explanation"][get_task("semeval-t6").labels[0]]["image_grid"]
    assert len(grid) == 7 and all(len(row) == 7 for row in grid)
    assert sum(map(sum, grid)) == pytest.approx(1.0)


def test_json_body_with_base64_image(client: TestClient, model: FakeModel) -> None:
    image = base64.b64encode(png_bytes()).decode()
    response = client.post("/v1/predict", json={"id": "m1", "text": "WAKE UP sheeple", "image_base64": image,
                                                "explain": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "m1" and body["explanation"] is not None
    assert body["scores"] == post(client).json()["scores"]  # the same meme as multipart
    assert client.post("/v1/predict", json={"text": "hi", "image_base64": "data:image/png;base64," + image}
                       ).status_code == 200
    bad = client.post("/v1/predict", json={"text": "hi", "image_base64": "not base64!"})
    assert bad.status_code == 422 and "not valid base64" in bad.json()["detail"]
    assert client.post("/v1/predict", json={"txt": "hi"}).json()["detail"].startswith("body: unknown field 'txt'")
    assert client.post("/v1/predict", content=b"{", headers={"content-type": "application/json"}
                       ).status_code == 400


def test_text_without_image_is_a_text_only_meme(client: TestClient, model: FakeModel) -> None:
    response = post(client, image=None, text="they lie\r\nalways")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "upload" and list(body["scores"]) == list(get_task("semeval-t6").labels)
    assert model.seen == [None]  # the model was asked without an image, not with some stand-in file
    expected = FakeModel().predict([Meme(id="upload", text="they lie\nalways", image=None)], explain=True)[0]
    assert (body["labels"], body["scores"]) == (expected["labels"], expected["scores"])


@pytest.mark.parametrize("text", [None, "", "  \r\n "])
def test_image_with_no_or_empty_text_is_an_image_only_meme(client: TestClient, model: FakeModel,
                                                            text: str | None) -> None:
    response = post(client, text=text)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "meme" and len(body["scores"]) == 22
    assert isinstance(model.seen[-1], bytes)  # the upload was read
    expected = FakeModel().predict([Meme(id="meme", text="", image=None)], explain=True)[0]
    assert body["scores"] == expected["scores"]  # seeded by the text length: the model saw text ""


def test_an_unchosen_file_input_counts_as_no_image(client: TestClient, model: FakeModel) -> None:
    # A plain HTML form sends an empty file input as a part with filename="" and no bytes.
    response = client.post("/v1/predict", files={"image": ("", b"", "application/octet-stream")},
                           data={"text": "some text"})
    assert response.status_code == 200, response.text
    assert model.seen == [None]


@pytest.mark.parametrize("kind", ["JPEG", "GIF", "WEBP", "BMP"])
def test_predict_accepts_other_types(client: TestClient, kind: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, format=kind)
    response = post(client, image=buffer.getvalue(), name="x.bin")  # judged by content, not by name
    assert response.status_code == 200, response.text


def test_single_label_model_flags_one_label_without_thresholds() -> None:
    model = FakeModel("harm-c-3")
    model.class_offsets = np.array([0.0, 0.5, 1.25], dtype=np.float32)
    with TestClient(create_app(model, warm_up=False)) as client:
        labels = client.get("/v1/labels").json()
        assert labels["thresholds"] is None and labels["class_offsets"] == [0.0, 0.5, 1.25]
        body = post(client).json()
    assert len(body["labels"]) == 1 and [c["flagged"] for c in body["categories"].values()].count(True) == 1
    assert all(c["threshold"] is None for c in body["categories"].values())


# --- batch --------------------------------------------------------------------------------------------
def test_batch_answers_each_meme_and_each_error_apart(client: TestClient, model: FakeModel) -> None:
    good = base64.b64encode(png_bytes()).decode()
    items = [{"id": "a", "text": "WAKE UP sheeple", "image_base64": good},
             {"text": "text only"},
             {"id": "broken", "image_base64": base64.b64encode(png_bytes()[:60]).decode()},
             {"id": "empty"},
             {"image_base64": base64.b64encode(b"plain text").decode()}]
    response = client.post("/v1/predict/batch", json={"items": items, "explain": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == "unsaved" and body["task"] == "semeval-t6"
    results = body["results"]
    assert [(r["index"], r["id"], r["status"]) for r in results] == [
        (0, "a", 200), (1, "1", 200), (2, "broken", 422), (3, "empty", 422), (4, "4", 415)]
    assert results[0]["prediction"]["scores"] == post(client).json()["scores"]
    assert results[0]["prediction"]["explanation"] is not None and results[0]["error"] is None
    assert "broken: corrupt image" in results[2]["error"] and results[2]["prediction"] is None
    assert "got neither" in results[3]["error"]


def test_batch_as_multipart(client: TestClient) -> None:
    files = [("image_0", ("a.png", png_bytes(), "image/png")), ("image_2", ("c.png", b"not an image", "image/png"))]
    data = {"text_0": "WAKE UP sheeple", "text_1": "text only", "id_1": "second"}
    response = client.post("/v1/predict/batch", files=files, data=data)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [("a", 200), ("second", 200), ("c", 415)]
    assert results[1]["prediction"]["scores"] == post(client, image=None, text="text only").json()["scores"]


@pytest.mark.parametrize("body, status, message", [
    ({"items": []}, 422, "no memes"),
    ({"items": [{"text": "x"}] * 9}, 422, "9 memes, over the 8-meme batch limit"),
    ({"memes": []}, 422, "an 'items' list"),
    ({"items": [{"text": "x"}], "extra": 1}, 422, "unknown field 'extra'"),
    ({"items": [{"text": "x"}], "explain": "maybe"}, 422, "'explain' must be true or false"),
])
def test_batch_request_errors(model: FakeModel, body: dict, status: int, message: str) -> None:
    with TestClient(create_app(model, max_batch_items=8, warm_up=False)) as client:
        response = client.post("/v1/predict/batch", json=body)
    assert response.status_code == status and message in response.json()["detail"]


def test_batch_multipart_fields_must_be_numbered(client: TestClient) -> None:
    response = client.post("/v1/predict/batch", data={"text": "x"})
    assert response.status_code == 422 and "image_<i>, text_<i>" in response.json()["detail"]
    response = client.post("/v1/predict/batch", data={"text_0": "x", "text_2": "y"})
    assert response.status_code == 422 and "without gaps" in response.json()["detail"]


# --- limits -------------------------------------------------------------------------------------------
def test_image_over_limit_is_413(client: TestClient) -> None:
    big = png_bytes(128, noise=True)
    assert 20_000 < len(big) < 60_000  # under the body cap, over the image cap
    response = post(client, image=big)
    assert response.status_code == 413
    assert "20,000-byte limit" in response.json()["detail"]


def test_body_over_limit_is_413_before_reading(client: TestClient) -> None:
    response = post(client, image=b"\0" * 200_000)
    assert response.status_code == 413
    assert "request body" in response.json()["detail"]


def test_streamed_body_over_limit_is_413(client: TestClient) -> None:
    # No Content-Length: the cap must hold while the chunks arrive.
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(50):
            yield b"\0" * 10_000

    response = client.post("/v1/predict", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert "request body" in response.json()["detail"]


def test_not_an_image_is_415(client: TestClient) -> None:
    response = post(client, image=b"just some text, not a picture", name="fake.png")
    assert response.status_code == 415
    assert "fake.png: not an image" in response.json()["detail"]


def test_disallowed_image_type_is_415(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    response = post(client, image=buffer.getvalue())
    assert response.status_code == 415
    assert "TIFF" in response.json()["detail"]


def test_other_body_types_are_415(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "multipart/form-data or application/json" in response.json()["detail"]


@pytest.mark.parametrize("image, text, expected", [
    (None, None, "or both; got neither"),
    (None, "", "or both; got neither"),
    (None, " \r\n ", "or both; got neither"),
    (png_bytes(), "x" * 101, "over the 100 limit"),
    (None, "x" * 101, "over the 100 limit"),
    (b"", "some text", "image file is empty"),
    (png_bytes()[:60], "some text", "meme.png: corrupt image"),  # header intact, data cut off
])
def test_bad_fields_are_422(client: TestClient, image: bytes | None, text: str | None, expected: str) -> None:
    response = post(client, image=image, text=text)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)
    assert expected in response.json()["detail"]


def test_misused_fields_are_422(client: TestClient) -> None:
    response = client.post("/v1/predict", data={"image": "cat.png", "text": "hi"})
    assert response.status_code == 422 and response.json()["detail"] == "'image' must be a file upload"
    response = client.post("/v1/predict", files={"text": ("t.txt", b"hi", "text/plain")})
    assert response.status_code == 422 and "'text' must be a plain form field" in response.json()["detail"]
    response = post(client, explain="perhaps")
    assert response.status_code == 422 and response.json()["detail"].startswith("explain:")


def test_malformed_multipart_is_400(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"--b\r\nno headers\r\n--b--",
                           headers={"content-type": "multipart/form-data"})  # no boundary
    assert response.status_code == 400 and "malformed multipart" in response.json()["detail"]


# --- probes, description, docs ---------------------------------------------------------------------
def test_healthz_labels_and_model(client: TestClient) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok", "task": "semeval-t6", "model_type": "fake", "model_id": "unsaved", "auth_required": False,
        "max_upload_bytes": 20_000, "max_text_chars": 100, "max_batch_items": 32}
    labels = client.get("/v1/labels").json()
    assert labels["labels"] == list(get_task("semeval-t6").labels)
    assert labels["multi_label"] is True and labels["thresholds"] == [0.5] * 22
    card = client.get("/v1/model").json()
    assert card["labels"] == labels["labels"] and card["thresholds"] == [0.5] * 22
    assert card["encoders"] is None and card["limits"]["max_batch_size"] == 16
    assert client.get("/readyz").json() == {"status": "ready", "detail": None}


def test_openapi_docs_and_page(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/v1/predict"]["post"]
    form = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "required" not in form and set(form["properties"]) == {"image", "text", "id", "explain"}
    assert "text-only" in form["properties"]["image"]["description"]
    assert form["properties"]["text"]["maxLength"] == 100
    assert {"400", "413", "415", "422", "503", "504"} <= set(predict["responses"])
    assert "Retry-After" in predict["responses"]["503"]["headers"]
    assert {"/healthz", "/readyz", "/metrics", "/v1/labels", "/v1/model", "/v1/predict/batch"} <= set(spec["paths"])
    for name in ("Prediction", "Category", "BatchPrediction", "BatchItem", "Health", "Readiness", "Labels",
                 "ModelCard", "Problem"):
        fields = spec["components"]["schemas"][name]["properties"]
        assert all(field.get("description") for field in fields.values()), name  # every field documented
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # works offline: Swagger UI is served locally
    assert client.get("/swagger-ui/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "memecat" in page.text
    assert "leave the image out for a text-only" in " ".join(page.text.split())
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_works_without_lifespan(model: FakeModel) -> None:
    # Some ASGI runners skip start-up events: the queue starts with the first request.
    client = TestClient(create_app(model))
    assert post(client).status_code == 200
    assert post(client, image=None).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_run_server_verifies_the_folder_and_names_the_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = {}
    (tmp_path / "config.json").write_text('{"format_version": 2, "model_type": "fake", "memecat_version": "0.1"}')

    def load_model(directory: Path) -> FakeModel:
        calls["dir"] = directory
        return FakeModel()

    monkeypatch.setattr("memecat.serve.app.load_model", load_model)
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, log_level: calls.update(app=app, host=host, port=port))
    run_server(tmp_path, host="0.0.0.0", port=9999)
    assert calls["dir"] == tmp_path and (calls["host"], calls["port"]) == ("0.0.0.0", 9999)
    with TestClient(calls["app"]) as client:
        card = client.get("/v1/model").json()
    assert card["model_type"] == "fake" and card["trained_with"] == "0.1"
    assert len(card["model_id"]) == 12 and card["model_id"] != "unsaved"
