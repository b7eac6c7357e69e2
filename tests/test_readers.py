import json

import pytest

from memecat.data.readers import read_dataset, scan_dataset
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
