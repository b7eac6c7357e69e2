"""Model folders fitted on the tiny data and saved in tests/golden, with the scores they gave when saved: a
loaded folder must score the same memes the same, so no change to features, nets or loading moves a prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import memecat
from memecat.tasks import load_split

GOLDEN = Path(__file__).with_name("golden")


@pytest.mark.parametrize("folder", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
def test_saved_models_predict_what_they_predicted(folder, tiny_data_root_module):
    expected = json.loads((GOLDEN / folder / "expected.json").read_text())
    model = memecat.load_model(GOLDEN / folder)
    memes = load_split(model.task, expected["split"])
    np.testing.assert_allclose(model.predict_proba(memes), np.array(expected["proba"]), atol=2e-5)
    assert model.predict(memes) == expected["predictions"]
