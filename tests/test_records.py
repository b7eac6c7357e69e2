"""The one record parser (JSON, JSON Lines, CSV): odd characters survive, predictions read back as written,
and every malformed file is a one-line DataError naming file and place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memecat.data.records import Record, iter_records, labels_from_cell, read_records
from memecat.errors import DataError
from memecat.predict.outputs import read_predictions, write_predictions

# Characters that break naive parsing: str.splitlines() splits on the line separators, CSV needs the quotes.
TRICKY = ["line\nbreak", "crlf\r\nend", "lone\rcr", "sep\u2028par\u2029end", "nel\x85vt\x0bff\x0cend",
          'say "cheese"', "comma, here", "semi;colon", "[bracketed", " padded "]


def tricky_predictions() -> list[dict]:
    records: list[dict] = [{"id": f"id {s}", "labels": [s, "Smears"], "scores": {"Smears": 0.25}} for s in TRICKY]
    records.append({"id": "all", "labels": TRICKY, "scores": {"Smears": 0.5}})
    records.append({"id": "none", "labels": [], "scores": {"Smears": 0.125}})
    records += [{"id": f"failed {s}", "error": f"{s}: corrupt image"} for s in TRICKY]
    return records


# --- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_predictions_read_back_as_written(tmp_path: Path, fmt: str) -> None:
    records = tricky_predictions()
    path = tmp_path / f"pred.{fmt}"
    write_predictions(records, path)
    assert [r.value for r in read_records(path)] == records


def test_csv_predictions_read_back_as_written(tmp_path: Path) -> None:
    records = tricky_predictions()
    path = tmp_path / "pred.csv"
    write_predictions(records, path)
    rows = [r.value for r in read_records(path)]
    # CSV cells are text: labels come back through the labels column rules, scores as the strings written.
    assert rows == [{"id": r["id"], "labels": r.get("labels"), "error": r.get("error", ""),
                     "Smears": str(r["scores"]["Smears"]) if "scores" in r else ""} for r in records]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_read_predictions_gives_the_labels_written(tmp_path: Path, fmt: str) -> None:
    records = [r for r in tricky_predictions() if "labels" in r]
    path = tmp_path / f"pred.{fmt}"
    write_predictions(records, path)
    assert read_predictions(path) == {r["id"]: r["labels"] for r in records}


def test_jsonl_lines_end_only_at_newline(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    texts = ["a\u2028b", "c\u2029d", "e\x85f", "g\x0bh", "i\x0cj", "k\x1cl\x1dm\x1en"]
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    assert read_records(path) == [Record(f"line {i}", {"text": t}) for i, t in enumerate(texts, start=1)]


def test_jsonl_with_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"id": 1}\r\n\r\n  \r\n{"id": 2}\r\n')
    assert read_records(path) == [Record("line 1", {"id": 1}), Record("line 4", {"id": 2})]


def test_csv_quoted_fields_span_lines_and_rows_name_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'id,text\r\n1,"two\r\nlines"\r\n\r\n2,"say ""hi"", \xe2\x80\xa8 ok"\r\n3,short\r\n')
    assert read_records(path) == [Record("line 2", {"id": "1", "text": "two\r\nlines"}),
                                  Record("line 5", {"id": "2", "text": 'say "hi", \u2028 ok'}),
                                  Record("line 6", {"id": "3", "text": "short"})]


@pytest.mark.parametrize("name, content", [
    ("d.json", '[{"id": "1", "text": "caf\u00e9"}]'),
    ("d.jsonl", '{"id": "1", "text": "caf\u00e9"}\n'),
    ("d.csv", "id,text\n1,caf\u00e9\n"),
])
def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    [record] = read_records(path, required_columns=("id",))
    assert record.value == {"id": "1", "text": "caf\u00e9"}


def test_a_json_object_becomes_records_only_when_the_caller_says_how(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"a.png": "x", "b.png": "y"}')
    assert read_records(path, from_object=lambda d: list(d)) == [Record("record 1", "a.png"),
                                                                  Record("record 2", "b.png")]
    with pytest.raises(DataError) as info:
        read_records(path, expected="a list of memes")
    assert str(info.value) == f"{path}: expected a list of memes"


@pytest.mark.parametrize("cell, labels", [
    ("", None), ("  ", None), ("Smears", ["Smears"]), (" Smears ; Doubt ;", ["Smears", "Doubt"]),
    ('["a;b", " c "]', ["a;b", " c "]), ("[]", []),
])
def test_labels_cell(cell: str, labels: list[str] | None) -> None:
    assert labels_from_cell(cell) == labels


# --- malformed files ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, problem", [
    ("d.jsonl", b'{"id": 1}\n\n{"id": 2,}\n',
     "malformed JSON on line 3 column 10: Expecting property name enclosed in double quotes"),
    ("d.jsonl", b'{"id": 1}\n{"text": "a\xe2\x80\xa8b"\n', "malformed JSON on line 2 column 15: Expecting ',' delimiter"),
    ("d.json", b'[\n  {"id": 1},\n  {"id" 2}\n]', "malformed JSON at line 3 column 9: Expecting ':' delimiter"),
    ("d.txt", b"", "malformed JSON at line 1 column 1: Expecting value"),
    ("d.json", b'"just a string"', "expected a JSON list of records"),
    ("d.csv", b"name,caption\nx,y\n", "CSV header lacks column(s) id, text"),
    ("d.csv", b"", "CSV header lacks column(s) id, text"),
    ("d.csv", b'id,text\n1,ok\n2,"never closed\n3,x\n',
     "malformed CSV in the row starting on line 3: unexpected end of data"),
    ("d.csv", b"id,text\n1,hello, world\n", "line 2: 3 fields, but the header names 2 columns"),
    ("d.csv", b'id,text,labels\n1,a,Smears\n2,b,"[""Doubt"""\n', "line 3: labels column is not a JSON list"),
    ("d.jsonl", b'{"id": 1}\n{"text": "caf\xe9"}\n', "not UTF-8 text (invalid continuation byte at byte 23)"),
    ("d.csv", b"\xef\xbb\xbfid,text\n1,\xff\n", "not UTF-8 text (invalid start byte at byte 13)"),
])
def test_malformed_file_is_one_line_naming_file_and_place(tmp_path: Path, name: str, content: bytes,
                                                          problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_records(path, required_columns=("id", "text"))
    assert str(info.value) == f"{path}: {problem}"


def test_undecodable_byte_offset_counts_from_the_start_of_the_file(tmp_path: Path) -> None:
    # Far past the decoder's first chunk, whose own offsets restart at every chunk.
    path = tmp_path / "d.jsonl"
    line = json.dumps({"text": "x" * 1000}).encode() + b"\n"
    path.write_bytes(line * 50 + b'{"text": "\x80"}\n')
    with pytest.raises(DataError) as info:
        read_records(path)
    assert str(info.value) == f"{path}: not UTF-8 text (invalid start byte at byte {len(line) * 50 + 10})"


def test_an_unreadable_path_is_a_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "d.json"
    folder.mkdir()
    with pytest.raises(DataError, match="d.json: cannot read the file"):
        read_records(folder)


# --- streaming ------------------------------------------------------------------------------------
def test_a_bad_record_is_a_problem_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2,}\n{"text": "caf\xe9"}\n{"id": 4}\n')
    records = list(iter_records(path))
    assert [(r.where, r.value) for r in records] == [("line 1", {"id": 1}), ("line 2", None), ("line 3", None),
                                                     ("line 4", {"id": 4})]
    assert str(records[1].problem) == (f"{path}: malformed JSON on line 2 column 10: "
                                       "Expecting property name enclosed in double quotes")
    assert str(records[2].problem) == f"{path}: not UTF-8 text (invalid continuation byte at byte 34)"


def test_a_bad_csv_row_is_a_problem_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'id,text\n1,"ok"\n2,"bad"x\n3,too,many\n4,caf\xe9\n5,"fine\nagain"\n')
    records = list(iter_records(path, required_columns=("id", "text")))
    assert [r.value["id"] if r.value else r.where for r in records] == ["1", "line 3", "line 4", "line 5", "5"]
    assert [str(r.problem).removeprefix(f"{path}: ") for r in records if r.problem] == [
        "malformed CSV in the row starting on line 3: ',' expected after '\"'",
        "line 4: 3 fields, but the header names 2 columns", "line 5: not UTF-8 text"]
    assert records[-1].value["text"] == "fine\nagain"


def test_an_over_long_line_is_refused_without_being_held(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("memecat.data.records.MAX_LINE_BYTES", 64)
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1}\n{"text": "' + "x" * 500 + '"}\n{"id": 3}\n')
    records = list(iter_records(path))
    assert [r.value for r in records] == [{"id": 1}, None, {"id": 3}]
    assert "line 2 is over the 0 MB record cap" in str(records[1].problem)


@pytest.mark.parametrize("name, lines", [
    ("d.jsonl", [b'{"id": 1}\n', b'{"id": 2}\n']),
    ("d.csv", [b"id,text\n1,a\n", b"2,b\n"]),
])
def test_records_stream_before_the_file_ends(tmp_path: Path, name: str, lines: list[bytes]) -> None:
    # A FIFO whose writer waits for the first record to be read before it writes the rest: a reader that
    # needed the whole file would wait forever.
    import os
    import threading

    fifo = tmp_path / name
    os.mkfifo(fifo)
    first_read = threading.Event()

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(lines[0])
            f.flush()
            first_read.wait(timeout=10)
            f.write(lines[1])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    records = iter_records(fifo, required_columns=("id",))
    first = next(records)
    first_read.set()
    assert str(first.value["id"]) == "1" and str(next(records).value["id"]) == "2"
    writer.join(timeout=10)


def test_parquet_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x\u2028y", None], "image": [b"\x89PNG", None],
                             "labels": [["Smears"], None]}), path, row_group_size=1)
    assert read_records(path, required_columns=("id", "text")) == [
        Record("row 1", {"id": "a", "text": "x\u2028y", "image": b"\x89PNG", "labels": ["Smears"]}),
        Record("row 2", {"id": "b", "text": None, "image": None, "labels": None})]
    with pytest.raises(DataError, match="Parquet file lacks column\\(s\\) caption"):
        read_records(path, required_columns=("caption",))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        read_records(tmp_path / "bad.parquet")
