"""Prediction inputs (one meme, a dataset, a folder + text sidecar), the batch step, and output files."""

from __future__ import annotations

import csv
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from test_bulk import ReaderModel, png_bytes

from memecat.errors import DataError, MemecatError
from memecat.predict.batch import Pending, Predictor
from memecat.predict.inputs import one_meme, open_source
from memecat.predict.outputs import read_predictions, write_predictions


def image_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "memes"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(png_bytes())
    return folder


def memes_of(source) -> list:
    """The memes a source yields (failing on any problem entry)."""
    entries = list(open_source(source).entries())
    assert [e.problem for e in entries if e.problem] == []
    return [e.meme for e in entries]


def predicted(memes_or_entries, batch_size: int = 64, explain: bool = False, model=None) -> list[dict]:
    entries = list(memes_or_entries.entries()) if hasattr(memes_or_entries, "entries") else memes_or_entries
    predictor = Predictor(model or ReaderModel(), "test", explain=explain)
    records = []
    for start in range(0, len(entries), batch_size):
        batch = [Pending(start + i, e) for i, e in enumerate(entries[start:start + batch_size])]
        records += [{k: v for k, v in r.items() if k not in ("_seq", "model")} for r in predictor(batch)]
    return records


# --- one meme from the command line ---------------------------------------------------------------
def test_one_meme_from_image_and_text(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "cat.png")
    [meme] = memes_of(one_meme(image=folder / "cat.png", text="hello"))
    assert (meme.id, meme.text, meme.image) == ("cat", "hello", folder / "cat.png")


def test_text_alone_is_a_text_only_meme() -> None:
    [meme] = memes_of(one_meme(text="WAKE UP sheeple"))
    assert (meme.text, meme.image) == ("WAKE UP sheeple", None)


@pytest.mark.parametrize("text", [None, "", "  \n "])
def test_image_alone_or_with_empty_text_is_an_image_only_meme(tmp_path: Path, text: str | None) -> None:
    folder = image_folder(tmp_path, "cat.png")
    [meme] = memes_of(one_meme(image=folder / "cat.png", text=text))
    assert (meme.id, meme.text, meme.image) == ("cat", "", folder / "cat.png")


@pytest.mark.parametrize("kwargs, message", [
    ({"image": "nowhere.png", "text": "hi"}, "nowhere.png: image file not found"),
    ({"image": "nowhere.png"}, "nowhere.png: image file not found"),
    ({}, "give --text TEXT and/or --image FILE"),
    ({"text": "  "}, "--text is empty and no --image is given"),
])
def test_bad_command_line_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(MemecatError, match=message) as info:
        one_meme(**kwargs)
    assert "\n" not in str(info.value)


def test_text_only_and_image_only_memes_are_predicted(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "cat.png")
    model = ReaderModel()
    entries = list(one_meme(text="they lie always").entries()) + list(one_meme(image=folder / "cat.png").entries())
    records = predicted(entries, explain=True, model=model)
    assert [r["id"] for r in records] == ["meme", "cat"]
    assert all(len(r["scores"]) == 22 and "error" not in r for r in records)
    assert model.seen == [None, folder / "cat.png"]  # the text-only meme reached the model without an image


# --- dataset files --------------------------------------------------------------------------------
def test_dataset_file(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "a.png")
    dataset = folder / "data.jsonl"
    dataset.write_text(json.dumps({"id": "m1", "text": "hi", "image": "a.png"}) + "\n")
    [meme] = memes_of(dataset)
    assert meme.id == "m1" and meme.image == folder / "a.png"


def test_dataset_with_image_only_and_text_only_records_is_predicted_whole(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png")
    dataset = folder / "data.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "both", "text": "hi", "image": "a.png"},
        {"id": "image-only", "text": "", "image": "b.png"},
        {"id": "text-only", "text": "no picture here"},
    ]))
    memes = memes_of(dataset)
    assert [(m.id, m.text, m.image) for m in memes] == [
        ("both", "hi", folder / "a.png"), ("image-only", "", folder / "b.png"), ("text-only", "no picture here", None)]
    records = predicted(open_source(dataset), explain=True)
    assert [r["id"] for r in records] == ["both", "image-only", "text-only"]
    assert all(len(r["scores"]) == 22 for r in records)


# --- a folder of images with a text sidecar -------------------------------------------------------
@pytest.mark.parametrize("name, content", [
    ("texts.json", json.dumps({"a.png": "first", "b.png": "second"})),
    ("texts.json", json.dumps([{"image": "a.png", "text": "first"}, {"image": "b.png", "text": "second"}])),
    ("texts.jsonl", '{"image": "a.png", "text": "first"}\n{"image": "b.png", "text": "second"}\n'),
    ("texts.csv", "image,text\na.png,first\nb.png,second\n"),
    ("captions.json", json.dumps({"a.png": "first", "b.png": "second"})),  # any single sidecar
])
def test_folder_with_sidecar(tmp_path: Path, name: str, content: str) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png")
    (folder / name).write_text(content)
    memes = memes_of(folder)
    assert [(m.id, m.text, m.image.name) for m in memes] == [("a", "first", "a.png"), ("b", "second", "b.png")]


@pytest.mark.parametrize("name, content", [
    ("texts.json", json.dumps({"a.png": "first"})),  # b.png not named
    ("texts.json", json.dumps({"a.png": "first", "b.png": ""})),
    ("texts.json", json.dumps({"a.png": "first", "b.png": None})),
    ("texts.json", json.dumps([{"image": "a.png", "text": "first"}, {"image": "b.png"}])),
    ("texts.jsonl", '{"image": "a.png", "text": "first"}\n{"image": "./b.png", "text": "   "}\n'),
    ("texts.csv", "image,text\na.png,first\nb.png,\n"),
])
def test_folder_image_without_text_is_image_only(tmp_path: Path, name: str, content: str) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png")
    (folder / name).write_text(content)
    (folder / "._b.png").write_bytes(b"macOS resource fork, not an image")  # hidden: skipped
    memes = memes_of(folder)
    assert [(m.id, m.text, os.path.normpath(m.image)) for m in memes] == [
        ("a", "first", str(folder / "a.png")), ("b", "", str(folder / "b.png"))]
    assert [r["id"] for r in predicted(open_source(folder))] == ["a", "b"]


@pytest.mark.parametrize("name, write", [
    ("texts.json", lambda texts: json.dumps(texts, ensure_ascii=False)),
    ("texts.jsonl", lambda texts: "".join(json.dumps({"image": k, "text": v}, ensure_ascii=False) + "\n"
                                          for k, v in texts.items())),
    ("texts.csv", lambda texts: "image,text\r\n" + "".join(f'{k},"{v}"\r\n' for k, v in texts.items())),
])
def test_sidecar_texts_keep_their_line_breaks(tmp_path: Path, name: str, write) -> None:
    texts = {"a.png": "top\u2028bottom", "b.png": "one\ntwo, three\x85four"}
    folder = image_folder(tmp_path, "a.png", "b.png")
    (folder / name).write_text(write(texts), encoding="utf-8")
    assert [m.text for m in memes_of(folder)] == list(texts.values())


def test_sidecar_with_a_byte_order_mark(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "a.png")
    (folder / "texts.csv").write_bytes("\ufeffimage,text\na.png,caf\u00e9\n".encode())
    [meme] = memes_of(folder)
    assert meme.text == "caf\u00e9"


def test_folder_with_an_empty_sidecar_predicts_every_image_without_text(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "b.png", "a.jpg")
    (folder / "texts.json").write_text("{}")
    assert [(m.id, m.text) for m in memes_of(folder)] == [("a", ""), ("b", "")]


@pytest.mark.parametrize("files, message", [
    ({}, "no text file in the folder"),
    ({"one.json": "{}", "two.csv": "image,text\n"}, "several text files \\(one.json, two.csv\\)"),
    ({"texts.json": "{broken"}, "malformed JSON at line 1 column 2"),
    ({"texts.json": "7"}, "expected a JSON object {image name: text} or a list of {image, text} records"),
    ({"texts.csv": "name,caption\n"}, "CSV header lacks column\\(s\\) image, text"),
])
def test_a_folder_that_cannot_be_read_is_refused_whole(tmp_path: Path, files: dict, message: str) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png")
    for name, content in files.items():
        (folder / name).write_text(content)
    with pytest.raises(DataError, match=message) as info:
        list(open_source(folder).entries())
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("files, problem", [
    ({"texts.json": json.dumps({"a.png": "x", "b.png": "y", "c.png": "z"})}, "c.png [id c]: image file not found"),
    ({"texts.json": json.dumps({"a.png": 5, "b.png": "y"})}, "image 'a.png': text must be a string, got int"),
    ({"texts.json": json.dumps({"a.png": "x", "a.gif": "y"}), "a.gif": ""}, "[id a]: duplicate id"),
    ({"texts.json": json.dumps({"a.png": "x"}), "b.webp": ""}, "[id b]: duplicate id (first at b.png)"),
    ({"texts.json": '[{"image": "a.png", "text": "x"}, 2]'}, "texts.json record 2 has no 'image' field"),
    ({"texts.jsonl": '{"image": "a.png"}\n{"text": "x"}\n'}, "texts.jsonl line 2 has no 'image' field"),
    ({"texts.json": json.dumps({"../c.png": "x"})}, "leaves the folder; allow it with --allow-outside-paths"),
])
def test_a_bad_sidecar_record_is_one_error_record(tmp_path: Path, files: dict, problem: str) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png")
    for name, content in files.items():
        (folder / name).write_text(content)
    records = predicted(open_source(folder))
    errors = [r["error"] for r in records if "error" in r]
    assert len(errors) == 1 and problem in errors[0] and "\n" not in errors[0]
    assert len(records) == len({r["id"] or r["where"] for r in records})  # each record once


# --- the batch step -------------------------------------------------------------------------------
def test_bad_image_becomes_an_error_record(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png", "d.png", "e.png")
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    texts = {f"{c}.png": f"text {c}" * (i + 1) for i, c in enumerate("abcde")}
    (folder / "texts.json").write_text(json.dumps(texts))
    records = predicted(open_source(folder), batch_size=2, explain=True)
    assert [r["id"] for r in records] == ["a", "b", "c", "d", "e"]
    assert records[2] == {"id": "c", "error": records[2]["error"]}
    assert "c.png" in records[2]["error"] and "\n" not in records[2]["error"]
    assert all("labels" in r and len(r["scores"]) == 22 for i, r in enumerate(records) if i != 2)


def test_the_batch_step_matches_plain_predict(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, "a.png", "b.png", "c.png")
    (folder / "texts.json").write_text(json.dumps({"a.png": "x", "b.png": "yy", "c.png": "zzz"}))
    assert predicted(open_source(folder), batch_size=2) == ReaderModel().predict(memes_of(folder))


# --- write_predictions ----------------------------------------------------------------------------
RECORDS = [
    {"id": "a", "labels": ["Smears", "Doubt"], "scores": {"Smears": 0.9, "Doubt": 0.7}},
    {"id": "b", "labels": [], "scores": {"Smears": 0.1, "Doubt": 0.2}},
    {"id": "c", "error": "c.png: corrupt image"},
]


def test_json_is_the_submission_list(tmp_path: Path) -> None:
    path = tmp_path / "out" / "pred.json"
    write_predictions([{"id": "a", "labels": ["Smears"]}], path)
    assert json.loads(path.read_text()) == [{"id": "a", "labels": ["Smears"]}]
    write_predictions(RECORDS, path)
    assert json.loads(path.read_text()) == RECORDS  # extra keys kept
    assert path.read_text() == json.dumps(RECORDS, indent=2, ensure_ascii=False) + "\n"  # streamed, same text
    write_predictions(iter([]), path)
    assert path.read_text() == "[]\n"


def test_jsonl_and_format_override(tmp_path: Path) -> None:
    path = tmp_path / "pred.txt"
    write_predictions(RECORDS, path, fmt="jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == RECORDS


def test_csv_columns(tmp_path: Path) -> None:
    path = tmp_path / "pred.csv"
    write_predictions(RECORDS, path)
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0]) == ["id", "labels", "error", "Smears", "Doubt"]
    assert rows[0] == {"id": "a", "labels": "Smears;Doubt", "error": "", "Smears": "0.9", "Doubt": "0.7"}
    assert rows[2]["error"] == "c.png: corrupt image" and rows[2]["Smears"] == ""
    assert rows[1]["labels"] == "[]"  # no labels, not the empty cell of a record without any


def test_csv_labels_that_semicolons_cannot_carry_are_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "pred.csv"
    write_predictions([{"id": "a", "labels": ["x;y", "z"]}, {"id": "b", "labels": [" padded"]}], path)
    rows = list(csv.DictReader(path.open(newline="")))
    assert [row["labels"] for row in rows] == ['["x;y", "z"]', '[" padded"]']


def test_dash_writes_stdout(capsys: pytest.CaptureFixture) -> None:
    write_predictions(RECORDS[:1], "-")
    assert json.loads(capsys.readouterr().out) == RECORDS[:1]


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(MemecatError, match="cannot tell the output format"):
        write_predictions(RECORDS, tmp_path / "pred.xlsx")
    with pytest.raises(MemecatError, match="unknown output format 'xml'"):
        write_predictions(RECORDS, tmp_path / "pred.json", fmt="xml")
    with pytest.raises(MemecatError, match="Parquet output needs a file name"):
        write_predictions(RECORDS, "-", fmt="parquet")


def test_crash_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pred.json"
    path.write_text("old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("memecat.files.os.replace", crash)
    with pytest.raises(OSError):
        write_predictions(RECORDS, path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["pred.json"]


def test_a_pipe_or_device_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    # `--out /dev/null` must stay a device (as root, a rename would put a plain file there). A FIFO stands in.
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_predictions(RECORDS, fifo)
    reader.join(timeout=10)
    assert json.loads(received[0]) == RECORDS
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe.json"]


def test_a_symlink_keeps_pointing_at_the_new_predictions(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "pred.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    write_predictions(RECORDS, link)
    assert link.is_symlink() and json.loads(target.read_text()) == RECORDS


def test_a_folder_is_refused_as_the_output(tmp_path: Path) -> None:
    folder = tmp_path / "pred.json"
    folder.mkdir()
    with pytest.raises(MemecatError, match="pred.json: is a folder"):
        write_predictions(RECORDS, folder)


# --- read_predictions -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_read_predictions_of_each_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"pred.{fmt}"
    write_predictions(RECORDS[:2], path)
    assert read_predictions(path) == {"a": ["Smears", "Doubt"], "b": []}


@pytest.mark.parametrize("name, content, message", [  # message: what follows the path
    ("pred.json", '{"a": ["Smears"]}', ': expected a JSON list of {"id", "labels"} records'),
    ("pred.json", '[{"id": "a", "labels": []}, {"labels": []}]', ": record 1 has no 'id'"),
    ("pred.jsonl", '{"id": "a", "labels": []}\n\n"a"\n', ": record 1 has no 'id'"),
    ("pred.jsonl", '{"id": "a", "labels": []}\n{"id": null, "where": "line 2", "error": "x"}\n',
     ": record 1 has no 'id'"),
    ("pred.json", '[{"id": "a", "labels": "Smears"}]', " [id a]: record has no 'labels' list"),
    ("pred.json", '[{"id": "c", "error": "c.png: corrupt image"}]', " [id c]: record has no 'labels' list"),
    ("pred.csv", "id,labels,error\nc,,c.png: corrupt image\n", " [id c]: record has no 'labels' list"),
    ("pred.jsonl", '{"id": 1, "labels": []}\n{"id": "1", "labels": []}\n', " [id 1]: duplicate id"),
    ("pred.csv", "id,error\na,\n", ": CSV header lacks column(s) labels"),
])
def test_read_predictions_problems(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_predictions(path)
    assert str(info.value) == f"{path}{message}"


def test_read_predictions_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_predictions(tmp_path / "nope.json")
    assert str(info.value) == f"{tmp_path / 'nope.json'}: predictions file not found"
