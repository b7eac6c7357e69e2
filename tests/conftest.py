"""Shared fixtures: synthetic memes and a tiny SemEval/Harm-C data root built in a temp folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_image(path: Path, seed: int = 0, size=(64, 48), fmt: str = "JPEG") -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def build_tiny_data_root(root: Path) -> Path:
    """A data root in the organisers' layouts with a few synthetic memes."""
    from memecat.tasks import get_task

    labels = list(get_task("semeval-t6").labels)
    rng = np.random.default_rng(0)
    for folder, name, n, labelled in [
        ("training_set_task3", "training_set_task3.txt", 40, True),
        ("dev_set_task3_labeled", "dev_set_task3_labeled.txt", 12, True),
        ("test_set_task3", "test_set_task3.txt", 6, False),
    ]:
        d = root / "semeval2021-task6" / folder
        d.mkdir(parents=True)
        rows = []
        for i in range(n):
            # Labels follow the text so a model can learn something.
            k = i % 3
            row = {"id": f"{folder}-{i}", "text": ["vote for freedom now", "they lie always", "look at this"][k]
                   + f" {i}", "image": f"{i}.png"}
            if labelled:
                row["labels"] = [labels[[10, 8, 16][k]]] + ([labels[16]] if rng.random() < 0.3 else [])
            make_image(d / f"{i}.png", seed=i, fmt="JPEG")  # JPEG named .png, as in the real data
            rows.append(row)
        (d / name).write_text(json.dumps(rows))
    (root / "semeval2021-task6" / "techniques_list_task3.txt").write_text("\n".join(labels))
    harm = root / "harm-c"
    (harm / "images").mkdir(parents=True)
    for split, n in [("train", 30), ("val", 9), ("test", 5)]:
        lines = []
        for i in range(n):
            level = ["not harmful", "somewhat harmful", "very harmful"][i % 3]
            row = {"id": f"{split}_{i}", "image": f"{split}_{i}.jpg", "text": f"{level} words {i}"}
            if split != "test":
                row["labels"] = [level] if level == "not harmful" else [level, "individual"]
            make_image(harm / "images" / f"{split}_{i}.jpg", seed=100 + i)
            lines.append(json.dumps(row))
        (harm / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_data_root(tmp_path: Path, monkeypatch) -> Path:
    """The tiny data root, set as MEMECAT_DATA for one test."""
    root = build_tiny_data_root(tmp_path / "data")
    monkeypatch.setenv("MEMECAT_DATA", str(root))
    return root


@pytest.fixture(scope="module")
def tiny_data_root_module(tmp_path_factory) -> Path:
    """The tiny data root, set as MEMECAT_DATA for a whole test module."""
    root = build_tiny_data_root(tmp_path_factory.mktemp("data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMECAT_DATA", str(root))
        yield root


ARTICLE = "A title\n\nThey are traitors and liars.\nThe weather is fine.\nWe stand for America!\n"


def add_sources(root: Path) -> Path:
    """Tiny SemEval-2024, PTC and Harm-P folders in their released layouts beside the tiny task data."""
    from memecat.data.sources import PTC_LABELS
    from memecat.tasks import get_task

    labels = get_task("semeval-t6").labels
    s24 = root / "semeval2024-task4"
    s24.mkdir()
    rows = [{"id": str(i), "text": ["they lie always\\nsad", "vote for freedom now", "look at this"][i % 3],
             "image": f"prop_meme_{i}.png", "labels": [labels[[8, 10, 16][i % 3]]], "link": "x"} for i in range(30)]
    (s24 / "train.json").write_text(json.dumps(rows))
    (s24 / "val.json").write_text(json.dumps(rows[:9]))
    ptc = root / "ptc-semeval2020-task11"
    (ptc / "train-articles").mkdir(parents=True)
    (ptc / "train-articles" / "article1.txt").write_text(ARTICLE)
    start = ARTICLE.index("traitors")
    flag = ARTICLE.index("We stand")
    lines = [f"1\tName_Calling,Labeling\t{start}\t{start + 8}", f"1\tLoaded_Language\t{start}\t{start + 19}",
             f"1\tFlag-Waving\t{flag}\t{flag + 21}", f"1\tWhataboutism,Straw_Men,Red_Herring\t{flag}\t{flag + 8}"]
    (ptc / "train-task2-TC.labels").write_text("\n".join(lines) + "\n")
    (ptc / "techniques.txt").write_text("\n".join(PTC_LABELS))
    harm_p = root / "harm-p"
    harm_p.mkdir()
    for split, extra in [("train", [{"id": "bad", "image": "b.png", "text": "x", "labels": [""]}]),
                         ("val", [{"id": "untargeted", "image": "u.png", "text": "y", "labels": ["somewhat harmful"]}]),
                         ("test", [])]:
        good = [{"id": f"{split}{i}", "image": f"{i}.png", "text": f"words {i}",
                 "labels": ["not harmful"] if i % 2 else ["very harmful", "society"]} for i in range(6)]
        (harm_p / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in good + extra) + "\n")
    return root


@pytest.fixture
def data_root(tiny_data_root):
    """The tiny data root with the extra sources, set as MEMECAT_DATA for one test."""
    return add_sources(tiny_data_root)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """One feature cache per test session, never the user's."""
    monkeypatch.setenv("MEMECAT_CACHE", os.environ.get("MEMECAT_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache"))
