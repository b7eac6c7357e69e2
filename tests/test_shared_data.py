"""End-to-end checks on the real shared data (skipped where ../shared/data is absent)."""

import json

import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA

from memecat.cli import cli

pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside the checkout")]


def test_shared_data_has_only_the_one_known_problem():
    # Every task split and extra source is read; the one record that is really wrong is Harm-P's, whose
    # released labels are empty strings.
    result = CliRunner().invoke(cli, ["data", "check", str(SHARED_DATA)])
    assert result.exit_code == 1
    problems = result.output.strip().splitlines()
    assert problems[0].endswith("harm-p/train.jsonl [id memes_326]: empty label ['', 'individual', 'organization']")
    assert problems[1:] == ["memecat: error: 1 problem(s) in 19881 memes"]
    for folder, count in [("semeval2024-task4", 7425), ("ptc-semeval2020-task11", 4553), ("semeval2021-task6", 950)]:
        result = CliRunner().invoke(cli, ["data", "check", str(SHARED_DATA / folder), "--no-images"])
        assert result.exit_code == 0 and f"{count} memes, no problems" in result.output, result.output


def test_linear_probe_predicts_the_test_split_in_the_organisers_format(tmp_path):
    model = tmp_path / "lp"
    result = CliRunner().invoke(cli, ["train", "--task", "semeval-t6", "--model", "linear-probe",
                                      "--out", str(model), "--data-root", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    pred = tmp_path / "pred.json"
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--split", "test", "--out", str(pred),
                                      "--data-root", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    records = json.loads(pred.read_text())
    techniques = set((SHARED_DATA / "semeval2021-task6/techniques_list_task3.txt").read_text().splitlines())
    assert len(records) == 200
    assert all(set(r) == {"id", "labels"} and set(r["labels"]) <= techniques for r in records)
    assert sum(len(r["labels"]) for r in records) > 200  # it predicts techniques, not empty sets
