"""The Python API: create_model, the fitted/unfitted contract, Meme images of every kind, one shared extractor."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import memecat
from memecat.tasks import get_task, load_split


@pytest.mark.parametrize("name", ["majority", "linear-probe", "label-attention", "simre"])
def test_an_unfitted_model_says_so(name, tmp_path):
    model = memecat.create_model(name, task="semeval-t6")
    assert not model.is_fitted and model.thresholds is None
    meme = memecat.Meme("1", "they lie")
    for call in (lambda: model.predict_proba([meme]), lambda: model.predict([meme]),
                 lambda: model.explain([meme]), lambda: model.save_pretrained(tmp_path / "m")):
        with pytest.raises(memecat.NotFittedError, match=f"this {name} model is not fitted"):
            call()
    assert not (tmp_path / "m").exists()


def test_create_model_checks_names_and_options():
    with pytest.raises(memecat.MemecatError, match="unknown model 'nope'; known models: .*label-attention, linear-probe, majority, simre"):
        memecat.create_model("nope", task="semeval-t6")
    with pytest.raises(memecat.MemecatError, match="config option 'train.max_epoch'"):
        memecat.create_model("simre", task="harm-c-2", train={"max_epoch": 3})
    model = memecat.create_model("label-attention", task="harm-c-3", train={"max_epochs": 25})
    # One training option set; the model's own training defaults stay for the rest.
    assert model.config.train.max_epochs == 25 and model.config.train.lr == 3e-4
    assert model.config.trains_on_eval_memes and not memecat.create_model("majority", "harm-c-2").config.trains_on_eval_memes


def test_a_failed_fit_leaves_the_model_unfitted():
    model = memecat.create_model("majority", task="semeval-t6")
    with pytest.raises(memecat.DataError):
        model.fit([memecat.Meme("1", "x", labels=("not a technique",))])
    assert not model.is_fitted


def test_a_meme_image_as_path_bytes_or_pil_gives_the_same_features(tiny_data_root):
    dev = load_split(get_task("semeval-t6"), "dev")[:3]
    path = dev[0].image
    data = path.read_bytes()
    picture = Image.open(io.BytesIO(data))
    memes = [memecat.Meme("p", "same text", image=str(path)), memecat.Meme("b", "same text", image=data),
             memecat.Meme("i", "same text", image=picture)]
    assert memes[0].image == path  # a str becomes a Path
    features = memecat.FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0")
    out = features.encode(memes)
    for key in ("image_pooled", "image_grid", "text_pooled"):
        np.testing.assert_allclose(out[key][1], out[key][0], atol=1e-6)
        np.testing.assert_allclose(out[key][2], out[key][0], atol=1e-2)  # re-encoded pixels: the same to float16
    with pytest.raises(memecat.DataError, match=r"^<image of meme bad> \[id bad\]: not a readable image"):
        features.encode([memecat.Meme("bad", "", image=b"GIF89a-broken")])


def test_models_share_the_extractor_they_are_given(tiny_data_root, tmp_path):
    task = get_task("semeval-t6")
    features = memecat.FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0")
    model = memecat.create_model("linear-probe", task=task, features=features, ngram_features=256, folds=3)
    model.fit(load_split(task, "train"))
    assert model.features is features
    loaded = memecat.load_model(model.save_pretrained(tmp_path / "probe"), features=features)
    assert loaded.features is features
    dev = load_split(task, "dev")
    np.testing.assert_allclose(loaded.predict_proba(dev), model.predict_proba(dev), atol=1e-6)


def test_a_folder_is_verified_when_it_loads(tiny_data_root, tmp_path):
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    task = get_task("semeval-t6")
    model = memecat.create_model("linear-probe", task=task, ngram_features=256, folds=3).fit(load_split(task, "train"))
    folder = model.save_pretrained(tmp_path / "probe")

    def broken(name, change) -> str:
        copy = shutil.copytree(folder, tmp_path / name)
        change(copy)
        with pytest.raises(memecat.MemecatError) as err:
            memecat.load_model(copy)
        return str(err.value)

    assert "weights file missing" in broken("no-weights", lambda f: (f / "model.safetensors").unlink())
    config = json.loads((folder / "config.json").read_text())
    short = {**config, "thresholds": config["thresholds"][:-1]}
    assert "thresholds must be 22 numbers" in broken("short", lambda f: (f / "config.json").write_text(json.dumps(short)))

    def narrower(f):
        state = load_file(str(f / "model.safetensors"))
        state["char-ngrams.coef"] = state["char-ngrams.coef"][:, :-1].contiguous()
        save_file(state, str(f / "model.safetensors"))

    assert "weights do not fit" in broken("narrow", narrower) and "char-ngrams" in broken("narrow2", narrower)
