"""The demo page end to end: uvicorn serving the fake model, driven by Debian's headless Chromium: image and
text, text only, image only, neither, an API error, and a server that needs an API key.

Set MEMECAT_SCREENSHOT=path to also save the page there (docs/page.png for the README).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_serve import FakeModel, serve_in_thread

from memecat.data.meme import Meme
from memecat.data.readers import read_dataset
from memecat.serve import create_app
from memecat.tasks import default_data_root

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEV_SET = "semeval2021-task6/dev_set_task3_labeled/dev_set_task3_labeled.txt"


@pytest.fixture
def served_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def server_url(served_model: FakeModel) -> Iterator[str]:
    with serve_in_thread(create_app(served_model)) as url:
        yield url


@pytest.fixture
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: run scripts/install-browser.sh")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def detected_labels(page) -> list[str]:
    names = page.locator(".bar.detected .bar-name").all_inner_texts()
    return sorted(name.replace("detected", "").strip() for name in names)


def analyse(page) -> None:
    """Submit the form and wait for the page to show the answer (result or error)."""
    with page.expect_response("**/v1/predict"):
        page.click("#submit")
    page.wait_for_function("!document.getElementById('submit').disabled")


def test_page_shows_categories_and_heat_map(server_url: str, served_model: FakeModel, chromium,
                                            tmp_path: Path) -> None:
    dataset = default_data_root() / DEV_SET
    if not dataset.exists():
        pytest.skip(f"{dataset} missing")
    meme = next(m for m in read_dataset(dataset) if m.image and m.image.exists())
    expected = FakeModel().predict([meme])[0]["labels"]

    page = chromium.new_page(viewport={"width": 1440, "height": 960})
    page.goto(server_url)
    page.wait_for_selector("#model-info b")  # /healthz answered

    # An API error is shown as a readable message.
    page.set_input_files("#image", files=[{"name": "note.png", "mimeType": "image/png",
                                           "buffer": b"not an image"}])
    page.fill("#text", meme.text)
    page.click("#submit")
    error = page.wait_for_selector("#error:not([hidden])")
    assert "415" in error.inner_text() and "note.png: not an image" in error.inner_text()

    page.set_input_files("#image", str(meme.image))
    page.click("#submit")
    page.wait_for_selector(".bar.detected")
    assert page.is_hidden("#error")
    assert detected_labels(page) == sorted(expected)
    assert page.locator(".bar").count() == 22
    assert page.is_visible("#legend")  # the heat map is drawn over the image
    assert page.evaluate("document.getElementById('canvas').width") > 100
    assert page.is_hidden("#modality")

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert served_model.seen[-1] is not None  # the image went along

    # Text only: remove the image and analyse again. Another text, so other labels, proves a new answer.
    text = "they lie always, wake up"
    text_only = FakeModel().predict([Meme(id="upload", text=text, image=None)])[0]["labels"]
    assert text_only and sorted(text_only) != sorted(expected)
    page.click("#clear-image")
    assert page.is_hidden("#preview") and page.is_hidden("#clear-image")
    page.fill("#text", text)
    analyse(page)
    assert page.is_hidden("#error")
    assert served_model.seen[-1] is None  # sent without an image
    assert detected_labels(page) == sorted(text_only)
    assert "from the text alone" in page.inner_text("#modality")
    assert page.is_hidden("#canvas-wrap") and page.is_hidden("#legend")  # no heat map without an image
    assert page.is_visible("#tokens-block")

    # Image only: the image back, the text emptied.
    page.set_input_files("#image", str(meme.image))
    page.fill("#text", "")
    analyse(page)
    assert page.is_hidden("#error")
    assert served_model.seen[-1] is not None
    image_only = FakeModel().predict([Meme(id="x", text="", image=None)])[0]["labels"]
    assert sorted(image_only) != sorted(text_only)
    assert detected_labels(page) == sorted(image_only)
    assert "from the image alone" in page.inner_text("#modality")
    page.wait_for_selector("#legend:not([hidden])")  # drawn once the chosen image has loaded

    # Neither: the page says what to give instead of sending nothing.
    page.click("#clear-image")
    calls = len(served_model.seen)
    page.click("#submit")
    assert "or both" in page.wait_for_selector("#error:not([hidden])").inner_text()
    assert len(served_model.seen) == calls
    # The answer's thresholds are drawn as ticks on the bars.
    assert page.locator(".bar .tick").count() == 22
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if target := os.environ.get("MEMECAT_SCREENSHOT"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_page_asks_for_the_api_key_when_the_server_needs_one(chromium) -> None:
    model = FakeModel()
    with serve_in_thread(create_app(model, api_key="s3cret", warm_up=False)) as url:
        page = chromium.new_page()
        page.goto(url)
        page.wait_for_selector("#api-key-field:not([hidden])")  # /healthz said a key is needed
        page.fill("#text", "they lie always")
        page.click("#submit")
        assert "needs an API key" in page.wait_for_selector("#error:not([hidden])").inner_text()
        assert model.seen == []  # nothing sent without a key
        page.fill("#api-key", "wrong")
        analyse(page)
        assert "401" in page.inner_text("#error") and model.seen == []
        page.fill("#api-key", "s3cret")
        analyse(page)
        assert page.is_hidden("#error") and model.seen == [None]
        assert page.is_visible("#tokens-block")  # the page asks for explanations
