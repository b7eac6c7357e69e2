"""Bulk prediction on one machine: every input record exactly once (labels or a one-line error), through bad
records, the broken-image corpus, interruptions and resumes, in every output format.

`ReaderModel` lives here and is shared with test_predict_io.py, test_bulk_kill.py and test_bulk_ray.py.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from broken_images import build_corpus, valid_image
from click.testing import CliRunner
from PIL import Image

from memecat.cli import cli
from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.errors import DataError, MemecatError
from memecat.models.base import MemeModel, load_model
from memecat.models.registry import register_model
from memecat.predict import batch as batch_module
from memecat.predict.batch import MAX_IMAGE_BYTES, ModelFailure
from memecat.predict.job import predict_dataset
from memecat.predict.journal import Journal
from memecat.predict.model_id import model_id
from memecat.predict.outputs import iter_output
from memecat.tasks import get_task


@register_model("bulk-test-reader")
class ReaderModel(MemeModel):
    """Deterministic and fast: scores seeded by the text's length. It decodes every image as the real models'
    feature extractor does, so an undecodable image raises DataError naming the meme; a meme whose text is
    "boom" makes it raise TypeError, as a bug would."""

    def __init__(self, task=None, config=None, features=None):
        super().__init__(task or get_task("semeval-t6"), config, features)
        self.thresholds = np.full(self.task.num_labels, 0.5, dtype=np.float32)
        self.class_offsets = np.zeros(self.task.num_labels, dtype=np.float32)
        self.seen: list = []
        self.calls = 0

    def _predict_proba(self, memes: list[Meme]) -> np.ndarray:
        self.calls += 1
        for meme in memes:
            self.seen.append(meme.image)
            if meme.text == "boom":
                raise TypeError("unsupported operand type(s)")
            if meme.image is not None:
                try:
                    open_image(meme.image, name=meme.image_name)
                except DataError as exc:
                    raise DataError(exc.path, exc.problem, record_id=meme.id) from None
        return np.stack([np.random.default_rng(len(m.text)).random(self.task.num_labels) ** 3 for m in memes])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"offset": torch.zeros(1)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


def png_bytes(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 200, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return ReaderModel().save_pretrained(tmp_path_factory.mktemp("model") / "reader")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def dataset(tmp_path: Path, n: int = 40) -> Path:
    """n good memes (every third text-only, every fifth image-only), then one of each kind of bad record."""
    folder = tmp_path / "data"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "ok.png").write_bytes(png_bytes())
    (folder / "img" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    os.mkfifo(folder / "img" / "fifo.png")
    with open(folder / "img" / "huge.png", "wb") as f:  # sparse: over the size cap without the disk space
        f.truncate(MAX_IMAGE_BYTES + 1)
    rows: list = []
    for i in range(n):
        row = {"id": f"m{i}", "text": "x" * (i % 7 + 1)}
        if i % 3:
            row["image"] = "img/ok.png"
            if i % 5 == 4:
                row["text"] = ""
        rows.append(row)
    rows += [
        {"id": "no-text"},
        {"text": "no id"},
        {"id": "m1", "text": "again"},
        '{"id": "broken", "text": ',
        {"id": "empty", "text": "   "},
        {"id": "corrupt", "text": "a", "image": "img/bad.png"},
        {"id": "missing", "text": "a", "image": "img/gone.png"},
        {"id": "fifo", "text": "a", "image": "img/fifo.png"},
        {"id": "huge", "text": "a", "image": "img/huge.png"},
        {"id": "escape", "text": "a", "image": "../../etc/passwd"},
        {"id": "absolute", "text": "a", "image": "/dev/zero"},
        {"id": "labels", "text": "a", "labels": [3]},
    ]
    path = write_jsonl(folder / "memes.jsonl", rows)
    with path.open("ab") as f:
        f.write(b'{"id": "latin1", "text": "caf\xe9"}\n')
    return path


BAD = {"no-text": "record has no 'text' field", "\0line 42": "line 42 has no 'id' field",
       "\0line 43": "[id m1]: duplicate id (first at line 2)", "\0line 44": "malformed JSON on line 44",
       "empty": "meme has neither text nor image", "corrupt": "img/bad.png [id corrupt]: not a readable image",
       "missing": "img/gone.png [id missing]: image file not found",
       "fifo": "img/fifo.png [id fifo]: image path is not a regular file",
       "huge": f"over the {MAX_IMAGE_BYTES:,}-byte cap", "escape": "leaves the dataset's folder",
       "absolute": "leaves the dataset's folder", "labels": "'labels' must be a list of strings",
       "\0line 53": "not UTF-8 text (invalid continuation byte"}


def keyed(records) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in records:
        key = record["id"] if record.get("id") is not None else "\0" + record["where"]
        assert key not in out, f"{key!r} twice"
        out[key] = record
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_every_record_once_bad_ones_as_one_line_errors(tmp_path, model_dir, fmt):
    out = tmp_path / f"pred.{fmt}"
    summary = predict_dataset(model_dir, dataset(tmp_path), out, progress=False)
    if fmt == "csv":
        import csv

        rows = [{k: v for k, v in r.items() if v} for r in csv.DictReader(out.open(newline=""))]
        records = [{**r, "id": r.get("id")} for r in rows]
    elif fmt == "json":
        records = json.loads(out.read_text())
    else:
        records = list(iter_output(out))
    got = keyed(records)
    assert len(got) == 40 + len(BAD) == summary.records and summary.errors == len(BAD)
    for key, problem in BAD.items():
        assert problem in got[key]["error"] and "\n" not in got[key]["error"], (key, got[key])
    assert all("labels" in got[f"m{i}"] for i in range(40))
    assert all(("model" in r) == (fmt in ("jsonl", "parquet")) for r in records)
    assert not Journal(out, fmt).folder.exists()  # the journal goes once the output is written


def test_outside_paths_when_allowed(tmp_path, model_dir):
    out = tmp_path / "pred.jsonl"
    predict_dataset(model_dir, dataset(tmp_path), out, progress=False, allow_outside_paths=True)
    got = keyed(iter_output(out))
    assert "/dev/zero [id absolute]: image path is not a regular file" in got["absolute"]["error"]
    assert "not found" in got["escape"]["error"] or "not a readable image" in got["escape"]["error"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns of the corrupt EXIF it survives
def test_the_broken_image_corpus_never_escapes(tmp_path, model_dir):
    paths = build_corpus(tmp_path / "corpus")
    rows = [{"id": f"broken-{i}", "text": "t", "image": str(p)} for i, p in enumerate(paths)]
    fine = tmp_path / "corpus" / "fine"
    fine.mkdir()
    from broken_images import FORMATS

    for fmt, suffix, mode in FORMATS:  # one valid file of every format among them
        (fine / f"ok{suffix}").write_bytes(valid_image(fmt, mode))
        rows.append({"id": f"ok-{fmt}", "text": "t", "image": str(fine / f"ok{suffix}")})
    out = tmp_path / "pred.jsonl"
    summary = predict_dataset(model_dir, write_jsonl(tmp_path / "corpus.jsonl", rows), out, progress=False,
                              allow_outside_paths=True, batch_size=16)
    got = keyed(iter_output(out))
    assert len(got) == len(rows)
    assert all("labels" in got[f"ok-{fmt}"] for fmt, _, _ in FORMATS)
    # A damaged file that still decodes in full (a flipped bit in pixel data) is an image, not an error.
    predicted = [p for i, p in enumerate(paths) if "error" not in got[f"broken-{i}"]]
    for path in predicted:
        open_image(path)
    assert summary.errors == len(paths) - len(predicted) > len(paths) // 2
    assert all("\n" not in r.get("error", "") for r in got.values())
    assert got["broken-3"]["error"].endswith("huge.png [id broken-3]: image is over the 40,000,000-pixel cap")


# --- interruptions and resumes --------------------------------------------------------------------
class Stop(KeyboardInterrupt):
    pass


def interrupt_after(monkeypatch, batches: int) -> None:
    """Stop the job (as Ctrl-C would) when the model is asked for batch number `batches + 1`."""
    real = batch_module.Predictor.__call__
    calls = {"n": 0}

    def call(self, batch):
        calls["n"] += 1
        if calls["n"] > batches:
            raise Stop
        return real(self, batch)

    monkeypatch.setattr(batch_module.Predictor, "__call__", call)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "json"])
def test_an_interrupted_job_resumes_exactly_once(tmp_path, model_dir, monkeypatch, fmt):
    source = dataset(tmp_path)
    whole = tmp_path / f"whole.{fmt}"
    predict_dataset(model_dir, source, whole, batch_size=8, progress=False)
    out = tmp_path / f"pred.{fmt}"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        with pytest.raises(Stop):
            predict_dataset(model_dir, source, out, batch_size=8, progress=False)
    journal = Journal(out, fmt)
    assert len(journal.shards()) == 3 and not out.exists()
    with pytest.raises(MemecatError, match=r"holds an interrupted job \(3 finished batches\): add --resume"):
        predict_dataset(model_dir, source, out, batch_size=8, resume=False, progress=False)
    summary = predict_dataset(model_dir, source, out, batch_size=8, progress=False)
    assert summary.skipped == 24 and summary.predicted == 40 + len(BAD) - 24
    assert out.read_bytes() == whole.read_bytes()  # the same file as a job never stopped


def test_resuming_with_another_model_is_refused(tmp_path, model_dir, monkeypatch):
    source = dataset(tmp_path)
    other = ReaderModel(get_task("semeval-t6"))
    other.thresholds[:] = 0.25
    other_dir = other.save_pretrained(tmp_path / "other")
    out = tmp_path / "pred.jsonl"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(Stop):
            predict_dataset(model_dir, source, out, batch_size=8, progress=False)
    with pytest.raises(MemecatError, match=f"was started with model {model_id(model_dir)} .*, not "
                                           f"{model_id(other_dir)}"):
        predict_dataset(other_dir, source, out, batch_size=8, progress=False)
    predict_dataset(model_dir, source, out, batch_size=8, progress=False)
    with pytest.raises(MemecatError, match=f"holds predictions of model {model_id(model_dir)}, not"):
        predict_dataset(other_dir, source, out, progress=False)  # a finished output says its model too


def test_resume_adds_new_memes_to_a_finished_output(tmp_path, model_dir):
    rows = [{"id": f"m{i}", "text": "x" * i} for i in range(1, 11)]
    source = write_jsonl(tmp_path / "memes.jsonl", rows)
    out = tmp_path / "pred.parquet"
    predict_dataset(model_dir, source, out, progress=False)
    write_jsonl(source, rows + [{"id": "new", "text": "fresh"}])
    summary = predict_dataset(model_dir, source, out, progress=False)
    assert (summary.skipped, summary.predicted, summary.records) == (10, 1, 11)
    assert [r["id"] for r in iter_output(out)] == [*(f"m{i}" for i in range(1, 11)), "new"]
    summary = predict_dataset(model_dir, source, out, progress=False, resume=False)
    assert summary.predicted == 11  # without resume: all over again


def test_a_json_list_records_no_model_so_resume_predicts_again(tmp_path, model_dir):
    source = write_jsonl(tmp_path / "memes.jsonl", [{"id": "a", "text": "x"}])
    out = tmp_path / "pred.json"
    predict_dataset(model_dir, source, out, progress=False)
    notices = []
    summary = predict_dataset(model_dir, source, out, progress=False, log=notices.append)
    assert summary.predicted == 1 and "do not say which model wrote them" in notices[0]
    assert json.loads(out.read_text()) == [{"id": "a", "labels": json.loads(out.read_text())[0]["labels"]}]


def test_a_retried_batch_is_kept_once_and_in_order(tmp_path):
    journal = Journal(tmp_path / "pred.jsonl", "jsonl")
    journal.start({"model_id": "x"})
    rows = [{"_seq": i, "id": f"m{i}", "labels": []} for i in range(10)]
    journal.write(rows[0:4], explain=False)
    journal.write(rows[6:10], explain=False)
    journal.write(rows[2:7], explain=False)  # a batch redone with other bounds, overlapping both
    assert [r["id"] for r in journal.rows()] == [f"m{i}" for i in range(10)]
    assert set(journal.done_keys()) == {f"m{i}" for i in range(10)}


# --- what a model does wrong ----------------------------------------------------------------------
def test_a_meme_that_trips_the_model_is_its_own_error(tmp_path, model_dir):
    rows = [{"id": f"m{i}", "text": "boom" if i == 5 else "fine"} for i in range(12)]
    out = tmp_path / "pred.jsonl"
    summary = predict_dataset(model_dir, write_jsonl(tmp_path / "m.jsonl", rows), out, batch_size=8,
                              progress=False)
    got = keyed(iter_output(out))
    assert summary.errors == 1 and "model failed (TypeError: unsupported operand" in got["m5"]["error"]


def test_a_model_that_fails_on_everything_stops_the_job(tmp_path, model_dir):
    rows = [{"id": f"m{i}", "text": "boom"} for i in range(300)]
    with pytest.raises(ModelFailure, match="the last 128 memes all failed inside the model"):
        predict_dataset(model_dir, write_jsonl(tmp_path / "m.jsonl", rows), tmp_path / "p.jsonl", batch_size=64,
                        progress=False)


# --- the model id ---------------------------------------------------------------------------------
def test_the_model_id_follows_config_and_weights_not_the_card(tmp_path, model_dir):
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    assert model_id(copy) == model_id(model_dir) and len(model_id(copy)) == 12
    (copy / "README.md").write_text("edited card")
    assert model_id(copy) == model_id(model_dir)
    meta = json.loads((copy / "config.json").read_text())
    meta["thresholds"][0] = 0.1
    (copy / "config.json").write_text(json.dumps(meta))
    assert model_id(copy) != model_id(model_dir)
    with pytest.raises(MemecatError, match="not a memecat model folder"):
        model_id(tmp_path)


# --- inputs ---------------------------------------------------------------------------------------
def test_parquet_input_with_image_bytes_and_paths(tmp_path, model_dir):
    (tmp_path / "a.png").write_bytes(png_bytes())
    table = pa.table({"id": ["bytes", "broken-bytes", "too-big"], "text": ["x", "z", "w"],
                      "image": pa.array([png_bytes(), b"\x89PNG broken", b"\0" * 5000], pa.binary())})
    pq.write_table(table, tmp_path / "memes.parquet")
    out = tmp_path / "pred.jsonl"
    predict_dataset(model_dir, tmp_path / "memes.parquet", out, progress=False, max_image_bytes=4000)
    got = keyed(iter_output(out))
    assert "labels" in got["bytes"] and "not a readable image" in got["broken-bytes"]["error"]
    assert "image is 5,000 bytes, over the 4,000-byte cap" in got["too-big"]["error"]
    table = pa.table({"id": ["path"], "text": ["yy"], "image": ["a.png"]})
    pq.write_table(table, tmp_path / "paths.parquet")
    predict_dataset(model_dir, tmp_path / "paths.parquet", out, progress=False, resume=False)
    assert "labels" in keyed(iter_output(out))["path"]


def test_memes_in_memory_and_an_in_memory_model(tmp_path):
    model = ReaderModel()
    memes = [Meme("a", "x"), Meme("b", "", image=png_bytes()), Meme("a", "again"), "not a meme"]
    out = tmp_path / "pred.jsonl"
    summary = predict_dataset(model, memes, out, progress=False)
    got = keyed(iter_output(out))
    assert summary.records == 4 and "labels" in got["a"] and "labels" in got["b"]
    assert "duplicate id" in got["\0meme 3"]["error"] and "is a str, not a Meme" in got["\0meme 4"]["error"]
    assert model.calls >= 1  # the given model itself ran, not a reloaded copy


def test_an_empty_input_is_an_error(tmp_path, model_dir):
    source = tmp_path / "memes.jsonl"
    source.write_text("\n")
    with pytest.raises(DataError, match="holds no memes to predict"):
        predict_dataset(model_dir, source, tmp_path / "pred.jsonl", progress=False)
    assert not (tmp_path / "pred.jsonl.parts").exists()


# --- the command ----------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_command_summary_and_exit_codes(tmp_path, model_dir):
    source = dataset(tmp_path)
    out = tmp_path / "pred.jsonl"
    result = invoke("predict", "--model", model_dir, "--input", source, "--out", out)
    assert result.exit_code == 1
    assert f"{out}: {40 + len(BAD)} records, 40 labelled, {len(BAD)} errors" in result.output
    assert f"{len(BAD)} of {40 + len(BAD)} memes could not be predicted" in result.output
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "a", "text": "fine"}])
    result = invoke("predict", "--model", model_dir, "--input", good, "--out", tmp_path / "good.parquet")
    assert result.exit_code == 0 and "1 records, 1 labelled, 0 errors" in result.output
    result = invoke("predict", "--model", model_dir, "--input", good, "--resume")
    assert result.exit_code == 2 and "--resume needs an output file" in result.output
    result = invoke("predict", "--model", model_dir, "--input", good, "--out", tmp_path / "x.csv", "--explain")
    assert result.exit_code == 2 and "--explain needs JSON, JSONL or Parquet output" in result.output


def test_explain_in_parquet_reads_back(tmp_path, model_dir):
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "a", "text": "fine"}, {"id": "b", "text": "ok"}])
    out = tmp_path / "pred.parquet"
    assert invoke("predict", "--model", model_dir, "--input", good, "--out", out, "--explain").exit_code == 0
    records = list(iter_output(out))
    assert len(records[0]["scores"]) == 22 and records[0]["explanation"] == {}
    assert load_model(model_dir).predict([Meme("a", "fine")], explain=True)[0]["scores"] == records[0]["scores"]
