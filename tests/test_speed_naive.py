"""The naive loop that prediction speed is measured against runs any model type: majority, label-attention,
SimRe (the probe's run is in benchmarks/results/throughput_*.json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import memecat
from memecat.tasks import load_split

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden")


@pytest.mark.parametrize("folder", ["majority-semeval", "label-attention-semeval", "simre-harm2"])
def test_naive_loop_runs_every_model_type(folder, tiny_data_root):
    model = memecat.load_model(GOLDEN / folder)
    split = json.loads((GOLDEN / folder / "expected.json").read_text())["split"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "naive_predict.py"), "--model",
                           str(GOLDEN / folder), "--split", split, "--json"],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["memes"] == len(load_split(model.task, split))
    assert result["warm_memes_per_s"] > 0 and result["cold_memes_per_s"] > 0
