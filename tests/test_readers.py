import json

import pytest

from memecat.data.readers import escapes, iter_dataset, read_dataset, scan_dataset, unique
from memecat.errors import DataError


def test_semeval_json_list_and_image_resolution(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "d.txt").write_text(json.dumps([{"id": 1, "text": "hi", "image": "a.png", "labels": ["Smears"]}]))
    [meme] = read_dataset(tmp_path / "d.txt")
    assert meme.id == "1" and meme.labels == ("Smears",) and meme.image == tmp_path / "a.png"


def test_harmeme_jsonl_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "m.jpg").write_bytes(b"x")
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"id": "m", "image": "m.jpg", "text": "t", "labels": ["very harmful", "society"]}) + "\n\n")
    [meme] = read_dataset(tmp_path / "train.jsonl")
    assert meme.image == tmp_path / "images" / "m.jpg"


def test_csv_with_semicolon_and_json_labels(tmp_path):
    (tmp_path / "d.csv").write_text('id,text,image,labels\n1,hello,a.png,Smears;Doubt\n2,yo,b.png,"[""Doubt""]"\n3,z,c.png,\n')
    memes = read_dataset(tmp_path / "d.csv")
    assert [m.labels for m in memes] == [("Smears", "Doubt"), ("Doubt",), None]


@pytest.mark.parametrize("content,suffix,problem", [
    ('[{"id": "1", "text": "a"', ".json", "malformed JSON"),
    ('{"id": "1", "text": "a"}\n{oops}\n', ".jsonl", "malformed JSON on line 2"),
    ('[{"text": "a"}]', ".json", "no 'id'"),
    ('[{"id": "7"}]', ".json", "[id 7]: record has no 'text'"),
    ('[{"id": "7", "text": "   "}]', ".json", "[id 7]: meme has neither text nor image"),
    ('[{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]', ".json", "duplicate id"),
    ('[{"id": "1", "text": "a", "labels": [3]}]', ".json", "list of strings"),
])
def test_bad_records_name_file_record_and_problem(tmp_path, content, suffix, problem):
    path = tmp_path / f"d{suffix}"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_dataset(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_an_image_only_meme_is_read_not_refused(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "1", "text": "", "image": "a.png"}) + "\n")
    [meme] = read_dataset(tmp_path / "d.jsonl")
    assert meme.text == "" and meme.image == tmp_path / "a.png"


def test_scan_lists_every_problem(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "1"}, {"id": "2", "text": ""}, {"id": "3", "text": "ok"}]))
    memes, problems = scan_dataset(path)
    assert [m.id for m in memes] == ["3"] and len(problems) == 2


def test_missing_dataset_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_dataset(tmp_path / "nope.json")


def test_csv_text_spanning_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,text,labels\n1,"TOP TEXT\nbottom text, with a comma",Smears\n2,"say ""hi""",\n',
                    encoding="utf-8")
    memes = read_dataset(path)
    assert [(m.id, m.text, m.labels) for m in memes] == [
        ("1", "TOP TEXT\nbottom text, with a comma", ("Smears",)), ("2", 'say "hi"', None)]


def test_jsonl_text_with_unicode_line_separators(tmp_path):
    text = "first\u2028second\u2029third\x85fourth"
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"id": "1", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    [meme] = read_dataset(path)
    assert meme.text == text


@pytest.mark.parametrize("name, content, problem", [
    ("d.jsonl", '{"id": "1", "text": "a"}\n\n["not", "an object"]\n', "line 3 is not a JSON object"),
    ("d.csv", 'id,text\n1,"two\nlines"\n,no id\n', "line 4 has no 'id' field"),
    ("d.json", '[{"id": "1", "text": "a"}, {"text": "b"}]', "record 2 has no 'id' field"),
])
def test_record_problems_say_where_the_record_is(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_dataset(path)
    assert str(err.value) == f"{path}: {problem}"


def test_dataset_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffid,text\n1,hello\n".encode())
    [meme] = read_dataset(path)
    assert (meme.id, meme.text) == ("1", "hello")


# --- streaming entries ----------------------------------------------------------------------------
TRICKY_TEXTS = ["TOP TEXT\nbottom text, with a comma", 'say "hi"', "sep\u2028par\u2029end", "crlf\r\nend",
                "nel\x85vt\x0bff\x0cend", " padded ", "semi;colon"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_texts_survive_a_write_then_read_round_trip(tmp_path, suffix):
    import csv

    path = tmp_path / f"d{suffix}"
    rows = [{"id": str(i), "text": t} for i, t in enumerate(TRICKY_TEXTS)]
    if suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, ["id", "text"])
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    assert [e.meme.text for e in iter_dataset(path)] == TRICKY_TEXTS


def test_entries_carry_each_bad_record_with_its_id_when_it_has_one(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "1", "text": "a"}\n{"id": "2"}\n[1]\n{"id": "1", "text": "b"}\n{"id": "3", "text": "c"}\n')
    entries = list(unique(iter_dataset(path), path))
    assert [(e.where, e.id, e.meme is not None) for e in entries] == [
        ("line 1", "1", True), ("line 2", "2", False), ("line 3", None, False), ("line 4", None, False),
        ("line 5", "3", True)]
    assert [e.key for e in entries] == ["1", "2", "\0line 3", "\0line 4", "3"]
    assert str(entries[3].problem) == f"{path} [id 1]: duplicate id (first at line 1)"


@pytest.mark.parametrize("name, outside", [
    ("a.png", False), ("sub/a.png", False), ("./a.png", False), ("sub/../a.png", False), ("..a.png", False),
    ("../a.png", True), ("sub/../../a.png", True), ("/etc/passwd", True), ("~/a.png", True),
])
def test_image_paths_that_leave_the_dataset_folder(name, outside):
    assert escapes(name) is outside


def test_a_refused_image_path_is_the_records_problem(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text,image\n1,a,../../etc/passwd\n2,b,/dev/zero\n3,c,ok.png\n")
    entries = list(iter_dataset(path, confine_images=True))
    assert [e.meme is None for e in entries] == [True, True, False]
    assert "image path '../../etc/passwd' leaves the dataset's folder; allow it with --allow-outside-paths" in str(
        entries[0].problem)
    assert all(e.problem is None for e in iter_dataset(path))  # training data is trusted


def test_parquet_dataset_with_image_bytes_paths_and_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.png").write_bytes(b"x")
    pq.write_table(pa.table({"id": [1, 2], "text": [None, "t"], "image": ["a.png", None],
                             "labels": [["Smears"], None]}), tmp_path / "d.parquet")
    pq.write_table(pa.table({"id": ["b"], "text": [b"\xff"], "image": [b"\x89PNG"]}), tmp_path / "b.parquet")
    memes = read_dataset(tmp_path / "d.parquet")
    assert [(m.id, m.text, m.image, m.labels) for m in memes] == [
        ("1", "", tmp_path / "a.png", ("Smears",)), ("2", "t", None, None)]
    [entry] = iter_dataset(tmp_path / "b.parquet")
    assert "'text' is not UTF-8" in str(entry.problem)
