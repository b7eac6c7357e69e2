"""The service under concurrency: micro-batching, backpressure, deadlines, probes under load, readiness,
metrics, auth, CORS, the in-memory feature cache, the model id and the command line."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient
from test_serve import FakeModel, png_bytes, post, serve_in_subprocess, serve_in_thread

from memecat.cli import cli
from memecat.serve import create_app, model_id
from memecat.serve.memory_cache import MemoryFeatureCache

PNG = png_bytes()


def send(base: str, text: str = "WAKE UP sheeple", timeout: float = 30) -> tuple[int, float, httpx.Response]:
    started = time.perf_counter()
    response = httpx.post(f"{base}/v1/predict", files={"image": ("m.png", PNG, "image/png")}, data={"text": text},
                          timeout=timeout)
    return response.status_code, time.perf_counter() - started, response


def concurrently(n: int, fn, *args) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn(*args), range(n)))


# --- scheduling ---------------------------------------------------------------------------------------
def test_concurrent_requests_are_scored_together() -> None:
    model = FakeModel(delay=0.2)
    app = create_app(model, max_batch_size=8, max_wait_ms=100, warm_up=False)
    with serve_in_thread(app) as base:
        results = concurrently(8, send, base)
    assert [status for status, _, _ in results] == [200] * 8
    assert sum(model.batches) == 8 and len(model.batches) <= 3 and max(model.batches) >= 4
    assert all(r.json()["scores"] == results[0][2].json()["scores"] for _, _, r in results)


def test_a_full_queue_answers_503_with_retry_after_at_once() -> None:
    # One meme at a time, a second each, two may wait: of 8 at once, at most 3 are scored and the rest refused.
    settings = {"max_batch_size": 1, "max_queue": 2, "max_wait_ms": 0, "max_batch_items": 2, "warm_up": False}
    with serve_in_subprocess(delay=1.0, **settings) as base:
        results = concurrently(8, send, base)
        metrics = httpx.get(f"{base}/metrics").text
    refused = [(seconds, r) for status, seconds, r in results if status == 503]
    assert len(refused) >= 5 and all(status in (200, 503) for status, _, _ in results)
    assert all(int(r.headers["retry-after"]) >= 1 and "queue is full" in r.json()["detail"] for _, r in refused)
    assert all(seconds < 0.5 for seconds, _ in refused)  # refused at once, not after waiting for the model
    assert re.search(r'memecat_rejected_total\{model_id="unsaved",reason="queue_full"\} [1-9]', metrics)


def test_a_request_past_its_deadline_answers_504_and_the_server_goes_on() -> None:
    model = FakeModel(delay=2.0)
    app = create_app(model, timeout_s=0.3, warm_up=False)
    with serve_in_thread(app) as base:
        status, seconds, response = send(base)
        assert status == 504 and 0.25 < seconds < 1.5  # at the deadline, not when the model is done
        assert "0.3 s deadline" in response.json()["detail"]
        model.delay = 0.0
        time.sleep(2.0)  # the abandoned batch finishes
        assert send(base)[0] == 200


def test_probes_answer_fast_while_the_model_is_busy() -> None:
    # The server in its own process, 48 requests from 16 clients queued on a model that takes 50 ms a call.
    with serve_in_subprocess(delay=0.05, max_batch_size=4) as base, ThreadPoolExecutor(16) as pool:
        load = [pool.submit(send, base) for _ in range(48)]
        time.sleep(0.2)
        probe_times = []
        with httpx.Client(base_url=base) as probe:
            for path in ["/healthz", "/readyz", "/metrics"] * 8:
                started = time.perf_counter()
                assert probe.get(path).status_code == 200
                probe_times.append(time.perf_counter() - started)
        statuses = [f.result()[0] for f in load]
    assert statuses == [200] * 48
    assert np.median(probe_times) < 0.05 and max(probe_times) < 0.25, probe_times


# --- readiness ------------------------------------------------------------------------------------------
def test_readyz_waits_for_the_warm_up() -> None:
    model = FakeModel(delay=0.5)
    with TestClient(create_app(model)) as client:
        first = client.get("/readyz")
        assert first.status_code == 503 and first.json()["status"] == "warming up"
        assert client.get("/healthz").status_code == 200  # alive all along
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert model.batches[:1] == [2]  # the warm-up scored a text-only and an image meme


def test_readyz_reports_a_failed_warm_up() -> None:
    class Broken(FakeModel):
        def _predict_proba(self, memes):
            raise RuntimeError("encoder weights unreadable")

    with TestClient(create_app(Broken())) as client:
        deadline = time.monotonic() + 10
        while (body := client.get("/readyz").json())["status"] == "warming up":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = client.get("/readyz")
        assert response.status_code == 503 and body["status"] == "failed"
        assert "encoder weights unreadable" in body["detail"]
        failed = post(client)  # a scoring failure is a 500 with a one-line reason, never a traceback
        assert failed.status_code == 500 and "internal error" in failed.json()["detail"]


# --- metrics --------------------------------------------------------------------------------------------
def test_metrics_count_requests_batches_and_the_model() -> None:
    with TestClient(create_app(FakeModel(), warm_up=False)) as client:
        post(client)
        post(client, image=b"not an image")
        client.get("/healthz")
        text = client.get("/metrics").text
    for line in [
        'memecat_http_requests_total{method="POST",route="/v1/predict",status="200"} 1.0',
        'memecat_http_requests_total{method="POST",route="/v1/predict",status="415"} 1.0',
        'memecat_http_requests_total{method="GET",route="/healthz",status="200"} 1.0',
        'memecat_http_request_duration_seconds_count{method="POST",route="/v1/predict"} 2.0',
        'memecat_batch_size_count{model_id="unsaved"} 1.0',
        'memecat_memes_total{model_id="unsaved",status="200"} 1.0',
        'memecat_queue_depth{model_id="unsaved"} 0.0',
        'memecat_ready{model_id="unsaved"} 1.0',
    ]:
        assert line in text, line
    assert re.search(r'memecat_model_info\{[^}]*model_id="unsaved"[^}]*model_type="fake"', text)
    assert "process_resident_memory_bytes" in text


# --- auth and CORS ----------------------------------------------------------------------------------------
def test_bearer_auth_guards_scoring_only() -> None:
    with TestClient(create_app(FakeModel(), api_key="s3cret", warm_up=False)) as client:
        missing = post(client)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        client.headers["Authorization"] = "Bearer wrong"
        assert post(client).status_code == 401
        assert client.post("/v1/predict/batch", json={"items": [{"text": "x"}]}).status_code == 401
        client.headers["Authorization"] = "Bearer s3cret"
        assert post(client).status_code == 200
        del client.headers["Authorization"]
        assert client.get("/healthz").json()["auth_required"] is True
        assert all(client.get(path).status_code == 200 for path in ["/readyz", "/metrics", "/v1/model", "/"])
        spec = client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "401" in spec["paths"]["/v1/predict"]["post"]["responses"]


def test_cors_is_off_unless_an_origin_is_given() -> None:
    origin = {"Origin": "https://moderation.example"}
    with TestClient(create_app(FakeModel(), warm_up=False)) as client:
        assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    with TestClient(create_app(FakeModel(), cors_origins=("https://moderation.example",), warm_up=False)) as client:
        assert client.get("/healthz", headers=origin).headers["access-control-allow-origin"] == origin["Origin"]
        preflight = client.options("/v1/predict", headers={**origin, "Access-Control-Request-Method": "POST",
                                                           "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200
        other = client.get("/healthz", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


# --- the in-memory feature cache -------------------------------------------------------------------------
class _Encoder:
    def __init__(self, name: str):
        self.name = name

    def fingerprint(self) -> str:
        return "f" + self.name


def test_memory_cache_stays_under_its_cap_and_keeps_the_recent() -> None:
    entry_bytes = 49 * 1280 * 2 + 1280 * 4  # an image's grid (float16) and pooled features (float32)
    cache = MemoryFeatureCache(max_bytes=10 * entry_bytes, root="/somewhere")
    image, text = _Encoder("efficientnet-lite0"), _Encoder("minilm-l6")
    rng = np.random.default_rng(0)
    for i in range(200):
        cache.put(image, f"img{i}", {"grid": torch.zeros(49, 1280, dtype=torch.float16), "pooled": torch.zeros(1280)})
        cache.put(text, f"txt{i}", {"tokens": torch.zeros(int(rng.integers(1, 60)), 384, dtype=torch.float16),
                                    "pooled": torch.zeros(384)})
        if i % 3 == 0:
            assert cache.get(image, "img0") is not None  # used often, so never evicted
        assert cache.nbytes <= cache.max_bytes
    assert cache.nbytes == sum(t.numel() * t.element_size() for key in list(cache._entries)
                               for t in cache._entries[key][0].values())
    assert cache.get(image, "img1") is None and cache.get(image, "img199") is not None
    assert cache.get(text, "img199") is None  # keyed by encoder too
    cache.put(image, "huge", {"grid": torch.zeros(10 * entry_bytes)})  # larger than the cap: not kept
    assert cache.get(image, "huge") is None and cache.nbytes <= cache.max_bytes
    assert cache.root == Path("/somewhere")  # where exported ONNX encoders are found


# --- model id and the command line -------------------------------------------------------------------------
def test_model_id_is_a_hash_of_the_folder(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "model.safetensors").write_bytes(b"weights")
    assert model_id(tmp_path / "a") == model_id(tmp_path / "b")  # wherever it lies
    (tmp_path / "b" / "model.safetensors").write_bytes(b"weightz")
    assert model_id(tmp_path / "a") != model_id(tmp_path / "b")
    assert re.fullmatch(r"[0-9a-f]{12}", model_id(tmp_path / "a"))


@pytest.fixture
def majority_folder(tmp_path: Path, tiny_data_root) -> Path:
    from memecat.models.registry import create_model
    from memecat.tasks import get_task, load_split

    model = create_model("majority", "semeval-t6").fit(load_split(get_task("semeval-t6"), "train"))
    return model.save_pretrained(tmp_path / "model")


def test_serve_and_predict_refuse_a_bad_folder_in_one_line(majority_folder: Path, monkeypatch) -> None:
    import json

    started = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(1))
    runner = CliRunner()
    (majority_folder / "model.safetensors").unlink()
    for command in (["serve", "--model", str(majority_folder)],
                    ["predict", "--model", str(majority_folder), "--text", "hi"]):
        result = runner.invoke(cli, command)
        assert result.exit_code != 0 and "weights file missing" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    config = majority_folder / "config.json"
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**meta, "thresholds": [0.5] * 3}))
    result = runner.invoke(cli, ["serve", "--model", str(majority_folder)])
    assert result.exit_code != 0 and "thresholds must be 22 numbers" in result.output
    assert not started


def test_serve_command_options(majority_folder: Path, monkeypatch) -> None:
    calls = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, log_level: calls.update(app=app, host=host))
    monkeypatch.setenv("MEMECAT_TEST_KEY", "k3y")
    result = CliRunner().invoke(cli, ["serve", "--model", str(majority_folder), "--max-batch-size", "4",
                                      "--max-queue", "40", "--timeout-s", "2", "--api-key-env", "MEMECAT_TEST_KEY",
                                      "--cors-origin", "https://a.example"])
    assert result.exit_code == 0, result.output
    assert calls["host"] == "127.0.0.1"  # local only unless asked
    with TestClient(calls["app"]) as client:
        limits = client.get("/v1/model").json()["limits"]
        assert (limits["max_batch_size"], limits["max_queue"], limits["timeout_s"]) == (4, 40, 2.0)
        assert client.post("/v1/predict", data={"text": "hi"}).status_code == 401
        ok = client.post("/v1/predict", data={"text": "hi"}, headers={"Authorization": "Bearer k3y"})
        assert ok.status_code == 200 and ok.json()["model_id"] == model_id(majority_folder)
    result = CliRunner().invoke(cli, ["serve", "--model", str(majority_folder), "--api-key-env", "NOT_SET_ANYWHERE"])
    assert result.exit_code != 0 and "NOT_SET_ANYWHERE is not set" in result.output


# --- one bad meme in a batch --------------------------------------------------------------------------------
def test_a_meme_that_breaks_the_model_fails_alone() -> None:
    class Picky(FakeModel):
        def _predict_proba(self, memes):
            if any(m.text == "poison" for m in memes):
                raise RuntimeError("kernel exploded")
            return super()._predict_proba(memes)

    with TestClient(create_app(Picky(), warm_up=False)) as client:
        items = [{"text": "fine"}, {"text": "poison"}, {"text": "also fine"}]
        results = client.post("/v1/predict/batch", json={"items": items}).json()["results"]
    assert [r["status"] for r in results] == [200, 500, 200]
    assert results[1]["error"] == "1: internal error while scoring"  # no internals leak to the client


def test_huge_images_are_decoded_a_few_per_model_call() -> None:
    from memecat.serve.scoring import ScoreRequest, pixel_groups

    requests = [ScoreRequest(str(i), "", None, "x", pixels=p) for i, p in enumerate([30, 30, 5, 5, 50, 0, 10])]
    groups = pixel_groups(requests, budget=48)
    assert [[r.id for r in group] for group in groups] == [["0"], ["1", "2", "3"], ["4"], ["5", "6"]]
