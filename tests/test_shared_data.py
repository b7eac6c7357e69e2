"""End-to-end checks on the real shared data (skipped where ../shared/data is absent)."""

import json

import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA

from memecat.cli import cli

pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside the checkout")]


def test_shared_data_has_no_problems():
    result = CliRunner().invoke(cli, ["data", "check", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    assert "4494 memes, no problems" in result.output


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
