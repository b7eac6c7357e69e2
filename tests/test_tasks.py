import numpy as np
import pytest

from memecat.data.meme import Meme
from memecat.errors import DataError, MemecatError
from memecat.tasks import get_task, load_split, resolve_data_root


def test_semeval_has_the_22_organiser_techniques_in_order():
    task = get_task("semeval-t6")
    assert task.num_labels == 22 and task.labels[0] == "Appeal to authority" and task.multi_label


def test_harm_tasks_map_raw_labels():
    raw = ("very harmful", "society")
    assert get_task("harm-c-2").task_labels(raw) == ["harmful"]
    assert get_task("harm-c-3").task_labels(raw) == ["very harmful"]
    assert get_task("harm-c-target").task_labels(raw) == ["society"]
    assert get_task("harm-c-2").task_labels(("not harmful",)) == ["not harmful"]


def test_target_task_keeps_only_harmful():
    task = get_task("harm-c-target")
    assert not task.keeps(Meme("a", "t", None, ("not harmful",)))
    assert task.keeps(Meme("b", "t", None, ("somewhat harmful", "individual")))


def test_unknown_label_is_a_data_error():
    with pytest.raises(DataError, match="'Sarcasm' is not in task semeval-t6"):
        get_task("semeval-t6").task_labels(("Sarcasm",), "f.json", "9")


def test_encode_decode_roundtrip():
    task = get_task("semeval-t6")
    y = task.encode([Meme("a", "t", None, ("Smears", "Doubt"))])
    assert y.sum() == 2 and set(task.decode(y[0])) == {"Smears", "Doubt"}
    assert get_task("harm-c-3").decode(np.array([0.1, 0.7, 0.2])) == ["somewhat harmful"]


def test_unknown_task_and_missing_root(tmp_path):
    with pytest.raises(MemecatError, match="known tasks"):
        get_task("nope")
    with pytest.raises(MemecatError, match="MEMECAT_DATA"):
        resolve_data_root(tmp_path / "missing")


def test_load_split_from_data_root(tiny_data_root):
    assert len(load_split(get_task("semeval-t6"), "train")) == 40
    assert len(load_split(get_task("harm-c-target"), "train")) == 20
