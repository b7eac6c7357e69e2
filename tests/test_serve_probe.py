"""The service end to end with a real (tiny) linear probe: answers, explanations and their cost, the feature
cache that never touches the disk, the broken-image corpus, and image bombs under a memory bound."""

from __future__ import annotations

import base64
import os
import random
import string
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from broken_images import build_corpus
from fastapi.testclient import TestClient
from PIL import Image
from sklearn.feature_extraction import FeatureHasher
from test_serve import serve_in_thread

from memecat.data.meme import Meme
from memecat.models.base import load_model, read_model_metadata
from memecat.models.linear_probe import NGRAM_VIEWS, LinearProbe, LinearProbeConfig
from memecat.models.probe_explain import word_pushes
from memecat.serve import create_app, model_id
from memecat.tasks import get_task, load_split

MiB = 1024 * 1024
CORPUS_RSS_BOUND = 300 * MiB  # growth of the process's resident memory while the whole corpus is scored
BOMB_RSS_BOUND = 600 * MiB  # ... while four near-cap (39.6 MP) PNGs are sent at once


@pytest.fixture(scope="module")
def probe_setup(tiny_data_root_module: Path, tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """A linear probe fitted on the tiny data and saved, and the feature cache folder it used."""
    cache = Path(os.environ.get("MEMECAT_TEST_CACHE") or tmp_path_factory.getbasetemp() / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMECAT_CACHE", str(cache))
        task = get_task("semeval-t6")
        model = LinearProbe(task, LinearProbeConfig(folds=3)).fit(load_split(task, "train"))
        folder = model.save_pretrained(tmp_path_factory.mktemp("probe") / "model")
        yield folder, cache


@pytest.fixture(scope="module")
def probe_app(probe_setup):
    folder, cache = probe_setup
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMECAT_CACHE", str(cache))
        model = load_model(folder)
        app = create_app(model, model_id=model_id(folder), folder_meta=read_model_metadata(folder),
                         feature_cache_bytes=4 * MiB, max_batch_items=64, max_queue=128)
        with TestClient(app) as client:
            deadline = time.monotonic() + 120
            while (ready := client.get("/readyz").json())["status"] == "warming up" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ready["status"] == "ready", ready
        yield app


@pytest.fixture
def client(probe_app) -> Iterator[TestClient]:
    with TestClient(probe_app) as client:
        yield client


def jpeg_bytes(seed: int, size=(96, 80)) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


# --- answers ------------------------------------------------------------------------------------------
def test_a_real_model_answers_with_its_folder_id_and_explains_on_request(client: TestClient, probe_setup) -> None:
    folder, _ = probe_setup
    response = client.post("/v1/predict?explain=true", files={"image": ("m.jpg", jpeg_bytes(1), "image/jpeg")},
                           data={"text": "they lie always 3"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == model_id(folder) and body["model_type"] == "linear-probe"
    label = get_task("semeval-t6").labels[8]  # the tiny data's "they lie always" technique
    assert {t["token"] for t in body["explanation"][label]["tokens"][:3]} == {"they", "lie", "always"}
    assert set(body["explanation"][label]["views"]) == {"text-encoder", "image-encoder", "char-ngrams",
                                                        "word-ngrams"}
    text_only = client.post("/v1/predict", data={"text": "they lie always 3"}).json()
    assert text_only["explanation"] is None and text_only["scores"] != body["scores"]
    card = client.get("/v1/model").json()
    assert card["encoders"] == {"text": "minilm-l6", "image": "efficientnet-lite0"}
    assert card["training_data"] == {"own": 40} and card["model_id"] == model_id(folder)


def test_batch_scores_like_single_requests(client: TestClient) -> None:
    memes = [{"id": "a", "text": "vote for freedom now", "image_base64": base64.b64encode(jpeg_bytes(2)).decode()},
             {"id": "b", "text": "look at this"},
             {"id": "c", "image_base64": base64.b64encode(jpeg_bytes(3)[:100]).decode()}]
    results = client.post("/v1/predict/batch", json={"items": memes}).json()["results"]
    assert [r["status"] for r in results] == [200, 200, 422]
    single = client.post("/v1/predict", json=memes[0]).json()
    assert results[0]["prediction"]["scores"] == single["scores"]
    assert results[1]["prediction"]["scores"] == client.post("/v1/predict", json=memes[1]).json()["scores"]


def test_uploads_never_reach_the_disk_cache(client: TestClient, probe_app, probe_setup) -> None:
    _, cache = probe_setup
    before = sorted(p for p in cache.rglob("*") if p.is_file())
    for seed in range(20):
        response = client.post("/v1/predict", files={"image": ("m.jpg", jpeg_bytes(100 + seed), "image/jpeg")},
                               data={"text": f"a new meme number {seed}"})
        assert response.status_code == 200
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == before
    memory = probe_app.state.service.cache
    assert 0 < memory.nbytes <= memory.max_bytes == 4 * MiB and len(memory) > 5


# --- explanation cost ----------------------------------------------------------------------------------
def _reference_word_pushes(probe, text, tfidf_rows, analyzers, top_k):
    """The explanation computed word by word and n-gram by n-gram: slow, obviously right."""
    first = {}
    for word in text.split():
        first.setdefault(word.lower(), word)
    words = list(first.values())
    push_of = np.zeros((probe.task.num_labels, len(words)))
    hasher = FeatureHasher(probe.config.ngram_features, input_type="string", alternate_sign=False)
    for view, row in tfidf_rows.items():
        analyzer = analyzers[view]
        if view == "char-ngrams":
            grams_of = [set(analyzer(w)) for w in words]
            ngrams = sorted(set().union(*grams_of))
            share = np.array([[g in grams for g in ngrams] for grams in grams_of], dtype=float)
        else:
            ngrams = sorted(set(analyzer(text)))
            tokens_of = [set(analyzer(w)) for w in words]
            share = np.array([[any(t in tokens for t in g.split()) for g in ngrams] for tokens in tokens_of], dtype=float)
        if not ngrams:
            continue
        columns = hasher.transform([[g] for g in ngrams]).indices
        push = probe.weights[view][0][:, columns] * row.toarray()[0, columns]
        push_of += push @ (share / share.sum(0).clip(min=1)).T
    return {label: [(words[k], round(float(push_of[j, k]), 4)) for k in np.argsort(-push_of[j], kind="stable")
                    if push_of[j, k] > 0][:top_k] for j, label in enumerate(probe.task.labels)}


def _tfidf_rows(model, text):
    raw, _ = model.raw_views([Meme("x", text)])
    views = model.scaled(raw)
    analyzers = {view: model.hasher(view).build_analyzer() for view in NGRAM_VIEWS}
    return {view: views[view][0] for view in analyzers}, analyzers


def _distinct_words(chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words: set[str] = set()
    while sum(len(w) + 1 for w in words) < chars:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9))))
    return " ".join(sorted(words))[:chars]


LONG_TEXTS = {
    "distinct words": _distinct_words(5000),
    "words sharing a token": " ".join(f"ab-c{i}" for i in range(1000))[:5000],
    "one long word": "x" * 5000,
    "repeated phrase": ("THEY LIE always, wake up! " * 200)[:5000],
}


def test_vectorised_explanation_matches_the_word_by_word_one(probe_app) -> None:
    model = probe_app.state.service.model
    texts = [m.text for m in load_split(get_task("semeval-t6"), "dev")]
    texts += ["THEY LIE always, they LIE!", "foo-bar baz foo bar-baz e-mail don't", "", "a b c",
              _distinct_words(400, seed=1), LONG_TEXTS["words sharing a token"][:600]]
    for text in texts:
        rows, analyzers = _tfidf_rows(model, text)
        fast = word_pushes(model, text, rows, analyzers, top_k=8)
        slow = _reference_word_pushes(model, text, rows, analyzers, top_k=8)
        for label, expected in slow.items():
            got = [(t["token"], t["weight"]) for t in fast[label]]
            assert [w for w, _ in got] == [w for w, _ in expected], (text, label)
            np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], atol=2e-4)


@pytest.mark.parametrize("kind", list(LONG_TEXTS))
def test_explaining_the_longest_text_costs_a_small_multiple_of_predicting_it(probe_app, kind: str) -> None:
    model = probe_app.state.service.model
    memes = [Meme("x", LONG_TEXTS[kind], image=jpeg_bytes(5))]
    model.predict_proba(memes)  # encoders warm, features cached: both timings below see the same state

    def best_of(fn, n=3) -> float:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn(memes)
            times.append(time.perf_counter() - started)
        return min(times)

    plain, explained = best_of(model.predict_proba), best_of(model.explain)
    assert explained < max(6 * plain, 0.15), (kind, plain, explained)
    tokens = model.explain(memes)[0][get_task("semeval-t6").labels[0]].get("tokens", [])
    assert len(tokens) <= 8


# --- broken images and bombs -----------------------------------------------------------------------------
@contextmanager
def peak_rss() -> Iterator[dict]:
    """The process's resident memory before and at its highest while the block runs (sampled every 2 ms)."""
    process = psutil.Process()
    found = {"baseline": process.memory_info().rss, "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            found["peak"] = max(found["peak"], process.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()
        found["growth"] = max(0, found["peak"] - found["baseline"])


def test_the_broken_image_corpus_never_gets_a_5xx(probe_app, tmp_path: Path) -> None:
    files = [p for p in build_corpus(tmp_path / "corpus") if p.is_file() and p.parent == tmp_path / "corpus"]
    assert len(files) > 200
    statuses: dict[int, int] = {}
    with serve_in_thread(probe_app) as base, httpx.Client(base_url=base, timeout=60) as http, peak_rss() as memory:
        def post(path: Path) -> httpx.Response:
            return http.post("/v1/predict", files={"image": (path.name, path.read_bytes(), "image/png")},
                             data={"text": "caption"})

        with ThreadPoolExecutor(4) as pool:
            singles = list(pool.map(post, files))
        batch_items = [{"id": p.name, "text": "caption", "image_base64": base64.b64encode(p.read_bytes()).decode()}
                       for p in files if p.stat().st_size]  # an empty image_base64 means no image
        batches = [http.post("/v1/predict/batch", json={"items": batch_items[i:i + 64]})
                   for i in range(0, len(batch_items), 64)]
    for path, response in zip(files, singles):
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 413, 415, 422), (path.name, response.status_code, response.text)
        if response.status_code != 200:
            detail = response.json()["detail"]
            assert detail.startswith(path.name) and "\n" not in detail, detail
    assert all(b.status_code == 200 for b in batches)
    per_item = [r["status"] for b in batches for r in b.json()["results"]]
    # One meme at a time or in a batch: the same answer.
    assert per_item == [r.status_code for p, r in zip(files, singles) if p.stat().st_size]
    assert statuses.get(422, 0) > 50 and statuses.get(415, 0) > 100  # damaged accepted types; other formats
    assert statuses.get(413, 0) >= 3 and statuses.get(200, 0) > 10  # headers claiming billions of pixels; intact
    assert memory["growth"] < CORPUS_RSS_BOUND, memory
    print(f"\ncorpus: {len(files)} files, statuses {dict(sorted(statuses.items()))}, "
          f"RSS growth {memory['growth'] / MiB:.0f} MiB")


def png_of_size(width: int, height: int) -> bytes:
    """A valid all-black RGB PNG, compressed row by row: a few hundred KB that decode to width x height x 3."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_image_bombs_are_refused_from_the_header_or_decoded_within_a_memory_bound(probe_app) -> None:
    bomb = png_of_size(8000, 7999)  # 187 KB that would decode to 64 MP (192 MB as RGB bytes)
    near_cap = png_of_size(6000, 6600)  # 39.6 MP, just under the 40 MP cap: decoded for real
    assert len(bomb) < 300_000
    with serve_in_thread(probe_app) as base, httpx.Client(base_url=base, timeout=120) as http:
        with peak_rss() as refused:
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda _: http.post("/v1/predict", files={"image": ("bomb.png", bomb)}),
                                        range(16)))
            seconds = time.perf_counter() - started
        assert {a.status_code for a in answers} == {413}
        assert "8000x7999, over the 40,000,000-pixel cap" in answers[0].json()["detail"]
        assert refused["growth"] < 64 * MiB and seconds < 5, (refused, seconds)
        with peak_rss() as decoded, ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: http.post("/v1/predict", files={"image": ("big.png", near_cap)}),
                                    range(4)))
        assert {a.status_code for a in answers} == {200}
        assert decoded["growth"] < BOMB_RSS_BOUND, decoded
    print(f"\n16 x 8000x7999 PNG: 413 in {seconds:.2f} s, RSS growth {refused['growth'] / MiB:.0f} MiB; "
          f"4 x 6000x6600 PNG at once: RSS growth {decoded['growth'] / MiB:.0f} MiB")


def test_huge_jpegs_decode_at_reduced_scale(client: TestClient) -> None:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (30, 60, 90)).save(buffer, "JPEG", quality=50)  # 49 MP, over the cap
    response = client.post("/v1/predict", files={"image": ("big.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text
