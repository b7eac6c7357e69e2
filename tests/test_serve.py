"""The HTTP API: happy path, every 4xx limit, health, labels, OpenAPI and the demo page.

FakeModel lives here and is shared with test_predict_io.py and test_browser.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.models.base import MemeModel
from memecat.serve import create_app, run_server
from memecat.tasks import get_task


class FakeModel(MemeModel):
    """Deterministic stand-in: scores seeded by the text length, a label-attention explanation per label.

    It reads every image like a real model, so an undecodable one raises DataError.
    """

    model_type = "fake"

    def __init__(self, task_name: str = "semeval-t6"):
        super().__init__(get_task(task_name))
        self.seen: list[Path | bytes | None] = []
        self.thresholds = np.full(self.task.num_labels, 0.5, dtype=np.float32)  # fitted as it is
        self.class_offsets = np.zeros(self.task.num_labels, dtype=np.float32)

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        for meme in memes:
            self.seen.append(meme.image)
            if meme.image is not None:
                open_image(meme.image)
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


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def client(model: FakeModel) -> TestClient:
    return TestClient(create_app(model, max_upload_bytes=20_000, max_text_chars=100))


def post(client: TestClient, image: bytes | None = png_bytes(), text: str | None = "WAKE UP sheeple",
         name: str = "meme.png"):
    files = {"image": (name, image, "image/png")} if image is not None else None
    data = {"text": text} if text is not None else None
    return client.post("/v1/predict", files=files, data=data)


def test_predict_happy_path(client: TestClient, model: FakeModel) -> None:
    response = post(client)
    assert response.status_code == 200, response.text
    body = response.json()
    labels = get_task("semeval-t6").labels
    assert body["id"] == "meme" and body["task"] == "semeval-t6" and body["model_type"] == "fake"
    assert set(body["labels"]) <= set(labels)
    assert list(body["scores"]) == list(labels)
    assert body["labels"] == [k for k, v in body["scores"].items() if v >= 0.5]
    grid = body["explanation"][labels[0]]["image_grid"]
    assert len(grid) == 7 and all(len(row) == 7 for row in grid)
    assert sum(map(sum, grid)) == pytest.approx(1.0)
    # The upload's bytes reached the model as they came: never written to a file.
    assert isinstance(model.seen[-1], bytes) and model.seen[-1].startswith(b"\x89PNG")


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


@pytest.mark.parametrize("image, text, expected", [
    (None, None, "or both; got neither"),
    (None, "", "or both; got neither"),
    (None, " \r\n ", "or both; got neither"),
    (png_bytes(), "x" * 101, "over the 100 limit"),
    (None, "x" * 101, "over the 100 limit"),
    (b"", "some text", "image file is empty"),
    (png_bytes()[:60], "some text", "meme.png"),  # header intact, data cut off: corrupt
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


def test_healthz_and_labels(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "task": "semeval-t6", "model_type": "fake",
                                             "max_upload_bytes": 20_000, "max_text_chars": 100}
    labels = client.get("/v1/labels").json()
    assert labels["labels"] == list(get_task("semeval-t6").labels)
    assert labels["multi_label"] is True and labels["thresholds"] == [0.5] * 22


def test_single_label_model_has_class_offsets_not_thresholds() -> None:
    model = FakeModel("harm-c-3")
    model.class_offsets = np.array([0.0, 0.5, 1.25], dtype=np.float32)
    client = TestClient(create_app(model))
    labels = client.get("/v1/labels").json()
    assert labels["thresholds"] is None and labels["class_offsets"] == [0.0, 0.5, 1.25]
    response = post(client)
    assert response.status_code == 200 and len(response.json()["labels"]) == 1


def test_openapi_docs_and_page(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "required" not in body and set(body["properties"]) == {"image", "text"}  # either may be left out
    assert "text-only" in body["properties"]["image"]["description"]
    assert {"/healthz", "/v1/labels"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # works offline: Swagger UI is served locally
    assert client.get("/swagger-ui/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "memecat" in page.text
    assert "leave the image out for a text-only" in " ".join(page.text.split())
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_run_server_loads_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = {}

    def load_model(directory: Path) -> FakeModel:
        calls["dir"] = directory
        return FakeModel()

    monkeypatch.setattr("memecat.serve.app.load_model", load_model)
    monkeypatch.setattr("uvicorn.run", lambda app, host, port: calls.update(app=app, host=host, port=port))
    run_server(tmp_path, host="0.0.0.0", port=9999)
    assert calls["dir"] == tmp_path and (calls["host"], calls["port"]) == ("0.0.0.0", 9999)
    assert TestClient(calls["app"]).get("/healthz").json()["model_type"] == "fake"
