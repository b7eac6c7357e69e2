"""The Ray engine on a local Ray with 2 CPUs: the same output file as the local engine (labels and error
records), an interrupted Ray job resumed exactly once, and `memecat predict --engine ray`.

Deselect with `-m "not ray"`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from broken_images import build_corpus
from click.testing import CliRunner

import memecat
from memecat.cli import cli
from memecat.predict.job import predict_dataset
from memecat.predict.journal import Journal
from memecat.predict.outputs import iter_output
from memecat.tasks import get_task, load_split

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    # The workers' feature cache is the test session's, as for the rest of the suite (conftest._isolated_cache).
    cache = os.environ.get("MEMECAT_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"MEMECAT_CACHE": cache}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def probe(tiny_data_root_module):
    """A linear probe that reads images (pooled EfficientNet-Lite0 features) and character n-grams."""
    task = get_task("semeval-t6")
    model = memecat.create_model("linear-probe", task="semeval-t6", views=("image-encoder", "char-ngrams"),
                                 ngram_features=256, folds=3)
    return model.fit(load_split(task, "train", tiny_data_root_module))


def two_hundred_memes(root: Path, folder: Path) -> Path:
    """200 memes over the tiny data root's images (copied beside the dataset), and broken inputs among them."""
    images = folder / "images"
    images.mkdir(parents=True)
    sources = sorted((root / "semeval2021-task6" / "training_set_task3").glob("*.png"))[:20]
    for i, source in enumerate(sources):
        shutil.copy(source, images / f"{i}.png")
    corpus = build_corpus(images / "broken", flips=0)
    words = ["vote for freedom now", "they lie always", "look at this", "WAKE UP", "the truth"]
    rows: list = []
    for i in range(200):  # every fourth text-only (image-only memes are test_bulk.py's)
        row = {"id": f"m{i}", "text": f"{words[i % 5]} {i}"}
        if i % 4:
            row["image"] = f"images/{i % 20}.png"
        rows.append(row)
        if i % 25 == 0:  # a broken input every 25 memes
            bad = corpus[(i // 25) * 7 % len(corpus)]
            rows.append({"id": f"broken{i}", "text": "x", "image": os.path.relpath(bad, folder)})
    rows += [{"id": "m3", "text": "twice"}, {"text": "no id"}, '{"id": "cut', {"id": "outside", "text": "x",
                                                                           "image": "../elsewhere.png"}]
    path = folder / "memes.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_ray_gives_the_local_file_and_resumes_exactly_once(local_ray, probe, tiny_data_root_module, tmp_path,
                                                           monkeypatch):
    source = two_hundred_memes(tiny_data_root_module, tmp_path / "data")
    local = tmp_path / "local.jsonl"
    summary = predict_dataset(probe, source, local, batch_size=16, progress=False)
    records = list(iter_output(local))
    assert summary.records == len(records) == 200 + 8 + 4 and 200 <= summary.records - summary.errors
    assert any("not a readable image" in r.get("error", "") or "corrupt image" in r.get("error", "")
               for r in records)  # images were decoded: their failures are error records

    # A Ray job stopped (as by Ctrl-C) after two batches, then resumed on Ray.
    out = tmp_path / "ray.jsonl"
    journal_write = Journal.write
    written = {"n": 0}

    def write_then_stop(self, rows, explain):
        if written["n"] == 2:
            raise KeyboardInterrupt
        written["n"] += 1
        return journal_write(self, rows, explain)

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "write", write_then_stop)
        with pytest.raises(KeyboardInterrupt):
            predict_dataset(probe, source, out, engine="ray", batch_size=16, workers=2, progress=False)
    kept = len(list(Journal(out, "jsonl").done_keys()))
    assert 0 < kept < len(records) and not out.exists()
    summary = predict_dataset(probe, source, out, engine="ray", batch_size=16, workers=2, progress=False)
    assert summary.skipped == kept and summary.predicted == len(records) - kept
    assert out.read_bytes() == local.read_bytes()  # same labels, same error records, same order, once each


def test_the_command_on_ray(local_ray, tmp_path):
    memes = [memecat.Meme(str(i), "t", labels=("Smears",) if i % 2 else ("Doubt",)) for i in range(6)]
    model_dir = memecat.create_model("majority", task="semeval-t6").fit(memes).save_pretrained(tmp_path / "m")
    source = tmp_path / "memes.csv"
    source.write_text("id,text\n" + "".join(f'{i},"line one\nline {i}"\n' for i in range(30)) + ",no id\n")
    outs = []
    for engine in ("local", "ray"):
        outs.append(tmp_path / f"{engine}.parquet")
        result = CliRunner().invoke(cli, ["predict", "--model", str(model_dir), "--input", str(source), "--out",
                                          str(outs[-1]), "--engine", engine, "--workers", "1", "--batch-size", "8"])
        assert result.exit_code == 1, result.output  # the record without an id
        assert "31 records, 30 labelled, 1 errors" in result.output
    assert outs[0].read_bytes() == outs[1].read_bytes()
