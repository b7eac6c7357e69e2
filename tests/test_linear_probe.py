import numpy as np
import pytest

from memecat.models.base import load_model
from memecat.models.linear_probe import VIEWS, LinearProbe, LinearProbeConfig
from memecat.models.thresholds import joint_thresholds
from memecat.tasks import get_task, load_split


@pytest.mark.parametrize("task_name", ["semeval-t6", "harm-c-3"])
def test_all_views_fit_save_load_predict(tmp_path, tiny_data_root, task_name):
    task = get_task(task_name)
    model = LinearProbe(task, LinearProbeConfig(folds=3)).fit(load_split(task, "train"))
    memes = load_split(task, "test")
    proba = model.predict_proba(memes)
    assert proba.shape == (len(memes), task.num_labels) and np.all((proba >= 0) & (proba <= 1))
    folder = model.save_pretrained(tmp_path / "model")
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.predict_proba(memes), proba, atol=1e-5)
    assert loaded.predict(memes) == model.predict(memes)
    # Readable by others (a service may run as another user); nothing left behind.
    assert sorted(f.name for f in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in folder.iterdir())


@pytest.mark.parametrize("view", ["char-ngrams", "word-ngrams"])
def test_ngram_views_learn_a_slogan(tiny_data_root, view):
    # In the tiny data "they lie always" memes carry one technique and "look at this" memes another.
    task = get_task("semeval-t6")
    model = LinearProbe(task, LinearProbeConfig(views=(view,), folds=3)).fit(load_split(task, "train"))
    proba = model.predict_proba(load_split(task, "dev"))
    texts = [m.text for m in load_split(task, "dev")]
    lie = [i for i, t in enumerate(texts) if t.startswith("they lie")]
    look = [i for i, t in enumerate(texts) if t.startswith("look at")]
    j = task.labels.index(task.labels[8])
    assert proba[lie, j].min() > proba[look, j].max()


def test_joint_thresholds_keep_a_rare_label_off_when_it_costs_micro_f1():
    # Label 1 is rare and its scores rank badly: switching it on would lift its own F1 from 0 but flood
    # micro-F1 with false alarms; label 0 is frequent and well ranked.
    rng = np.random.default_rng(0)
    n = 400
    y = np.zeros((n, 2), dtype=int)
    y[:, 0] = rng.random(n) < 0.5
    y[:6, 1] = 1
    proba = np.stack([0.3 + 0.4 * y[:, 0] + 0.1 * rng.random(n), rng.random(n) * 0.5], axis=1)
    thresholds = joint_thresholds(y, proba)
    decided = proba >= thresholds
    assert decided[:, 0].tolist() == y[:, 0].astype(bool).tolist()
    assert decided[:, 1].sum() < 20


@pytest.mark.parametrize("views", [VIEWS, ("word-ngrams",)], ids=["all views", "word view alone"])
def test_explanations_name_the_words_behind_a_label(tiny_data_root, views):
    task = get_task("semeval-t6")
    model = LinearProbe(task, LinearProbeConfig(views=views, folds=3)).fit(load_split(task, "train"))
    meme = next(m for m in load_split(task, "dev") if m.text.startswith("they lie"))
    [record] = model.predict([meme], explain=True)
    entry = record["explanation"][task.labels[8]]
    assert set(entry["views"]) == set(views)
    # The technique's slogan, not the meme's running number, is what pushes the label.
    assert sorted(t["token"] for t in entry["tokens"][:3]) == ["always", "lie", "they"]
    assert all(t["weight"] > 0 for t in entry["tokens"])
