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
