"""The lean prediction path: once the encoders' ONNX exports are on record, a probe predicts without PyTorch,
transformers, scikit-learn or SciPy, with the very features and scores of the path that builds the encoders in
PyTorch; a record is used only while the files it was made from are unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import memecat
from memecat.encoders.exports import find_export, source_stamp, write_record
from memecat.encoders.frozen import FrozenImageEncoder
from memecat.encoders.preprocess import ImagePreprocessing
from memecat.features import FeatureExtractor
from memecat.tasks import get_task, load_split

HEAVY = ["torch", "transformers", "lightning", "sklearn", "scipy"]

PREDICT = """
import json, sys
import numpy as np
from PIL import Image
import memecat
from memecat.tasks import load_split
model = memecat.load_model(sys.argv[1])
memes = load_split(model.task, "dev") + [memecat.Meme("t", "only words here"),
                                        memecat.Meme("i", "", image=Image.new("RGB", (90, 60), (10, 200, 30)))]
proba = model.predict_proba(memes)
print(json.dumps({"proba": proba.tolist(), "labels": model.predict(memes),
                  "modules": [name for name in sys.argv[2:] if name in sys.modules]}))
"""


def extra_memes() -> list[memecat.Meme]:
    return [memecat.Meme("t", "only words here"),
            memecat.Meme("i", "", image=Image.new("RGB", (90, 60), (10, 200, 30)))]


def cache_sharing_exports(root: Path, exports: Path) -> Path:
    root.mkdir()
    (root / "onnx").symlink_to(exports, target_is_directory=True)
    return root


@pytest.fixture
def probe(tiny_data_root, tmp_path):
    """A fitted probe whose encoders were built in PyTorch (exported, checked and recorded in `built/onnx`)."""
    task = get_task("semeval-t6")
    features = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0", tmp_path / "built")
    model = memecat.create_model("linear-probe", task=task, features=features, ngram_features=256, folds=3)
    model.fit(load_split(task, "train"))
    return model, model.save_pretrained(tmp_path / "probe")


def test_a_probe_predicts_without_torch_and_scores_as_the_pytorch_built_path(probe, tmp_path):
    model, folder = probe
    memes = load_split(model.task, "dev") + extra_memes()
    expected = model.predict_proba(memes)
    exports = tmp_path / "built" / "onnx"
    assert sorted(path.parent.name for path in exports.glob("*/*.tokenizer.json")) == ["minilm-l6"]
    assert len(list(exports.glob("*/*.json"))) == 3  # two records and the tokenizer

    cache = cache_sharing_exports(tmp_path / "lean", exports)  # exports, but no cached features
    done = subprocess.run([sys.executable, "-c", PREDICT, str(folder), *HEAVY], capture_output=True, text=True,
                          check=True, env={**os.environ, "MEMECAT_CACHE": str(cache)})
    out = json.loads(done.stdout)
    assert out["modules"] == []
    np.testing.assert_array_equal(np.array(out["proba"]), expected)
    assert out["labels"] == model.predict(memes)


def test_lean_features_are_the_pytorch_built_features_and_close_to_pytorch_runtime(probe, tmp_path):
    model, _ = probe
    memes = load_split(model.task, "dev") + extra_memes()
    built = model.features.encode_arrays(memes)
    lean = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0",
                                       cache_sharing_exports(tmp_path / "lean", tmp_path / "built" / "onnx"))
    got = lean.encode_arrays(memes)
    assert lean._modules == {"text": None, "image": None}  # never built in PyTorch
    for key in built:
        np.testing.assert_array_equal(got[key], built[key])
    in_torch = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0", tmp_path / "torch", runtime="torch")
    for key, value in in_torch.encode_arrays(memes).items():
        np.testing.assert_allclose(value, built[key], atol=2e-3, rtol=2e-3)


def test_tensors_for_neural_models_are_the_arrays(probe):
    model, _ = probe
    memes = load_split(model.task, "dev")[:3]
    arrays, tensors = model.features.encode_arrays(memes), model.features.encode(memes)
    assert set(arrays) == set(tensors)
    for key in arrays:
        np.testing.assert_array_equal(tensors[key].numpy(), arrays[key])


def test_a_record_is_used_only_while_its_sources_are_unchanged(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 10)
    exports = tmp_path / "onnx"
    (exports / "tiny").mkdir(parents=True)
    (exports / "tiny" / "abc.onnx").write_bytes(b"not opened until run")
    pre = ImagePreprocessing(32, 36, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    write_record(exports, "tiny-spec", FrozenImageEncoder("tiny", "abc", 8, None, pre), [weights])

    found = find_export(exports, "image", "tiny-spec")
    assert found is not None and (found.name, found.fingerprint(), found.dim) == ("tiny", "abc", 8)
    assert repr(found.preprocessing) == repr(pre)
    assert find_export(exports, "text", "tiny-spec") is None and find_export(exports, "image", "other") is None
    os.utime(weights, ns=(1, 1))  # new weights in place
    assert find_export(exports, "image", "tiny-spec") is None
    assert source_stamp([tmp_path / "gone"]) is None


def test_an_encoder_without_source_files_gets_no_record(tmp_path):
    pre = ImagePreprocessing(32, 36, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    write_record(tmp_path, "random-weights", FrozenImageEncoder("tiny", "abc", 8, None, pre), [])
    assert not list(tmp_path.rglob("*.json"))


def test_loading_a_probe_imports_no_neural_model():
    script = ("import sys, memecat.models.registry as r; r.model_class('linear-probe'); r.model_class('majority');"
              " print(sorted(m for m in sys.modules if m.startswith('memecat.models.')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "label_attention" not in loaded and "simre" not in loaded and "ensemble" not in loaded
