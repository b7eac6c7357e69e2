"""Evaluation reports: the right sections and charts per task kind, in Markdown and HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memecat.report import write_report
from memecat.tasks import get_task


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 200


def semeval_data(n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    gold = (rng.random((n, 22)) < 0.2).astype(int)
    proba = np.clip(0.45 * gold + 0.6 * rng.random((n, 22)), 0, 1)
    return gold, (proba >= 0.5).astype(int), proba


def test_multi_label_markdown_report(tmp_path: Path) -> None:
    task = get_task("semeval-t6")
    gold, pred, proba = semeval_data()
    path = write_report(task, gold, pred, tmp_path / "rep", proba=proba)
    assert path == tmp_path / "rep" / "report.md"
    text = path.read_text()
    assert "| micro_f1 |" in text and "| macro_f1 |" in text
    assert all(label in text for label in task.labels)
    for chart in ("per_label_f1.png", "cooccurrence.png", "threshold_sweep.png"):
        assert f"]({chart})" in text
        assert_png(tmp_path / "rep" / chart)
    assert not (tmp_path / "rep" / "confusion.png").exists()
    assert "best micro-F1" in text


def test_single_label_html_report(tmp_path: Path) -> None:
    task = get_task("harm-c-3")
    rng = np.random.default_rng(2)
    gold = np.eye(3, dtype=int)[rng.integers(0, 3, 40)]
    pred = np.eye(3, dtype=int)[rng.integers(0, 3, 40)]
    path = write_report(task, gold, pred, tmp_path, proba=rng.random((40, 3)), fmt="html")
    text = path.read_text()
    assert path.name == "report.html" and text.startswith("<!doctype html>")
    assert "<td>mmae</td>" in text and "somewhat harmful" in text
    assert_png(tmp_path / "confusion.png")
    assert_png(tmp_path / "per_label_f1.png")
    # No threshold sweep for a single-label task; the co-occurrence is the confusion matrix there.
    assert not (tmp_path / "threshold_sweep.png").exists() and not (tmp_path / "cooccurrence.png").exists()


def test_shapes_are_checked(tmp_path: Path) -> None:
    gold, pred, _ = semeval_data()
    with pytest.raises(ValueError, match="pred has shape"):
        write_report(get_task("semeval-t6"), gold, pred[:, :5], tmp_path)
    with pytest.raises(ValueError, match="'md' or 'html'"):
        write_report(get_task("semeval-t6"), gold, pred, tmp_path, fmt="pdf")
