"""The neural models on memes without an image, with empty text, and with extra sources' memes in training."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from memecat.data.meme import Meme
from memecat.models.ensemble import member_splits
from memecat.models.label_attention import LabelAttentionConfig, LabelAttentionEnsemble, LabelAttentionNet
from memecat.models.simre import SimReConfig, SimReModel
from memecat.tasks import get_task, load_split
from memecat.training import TrainConfig
from memecat.training.label_attention import LabelAttentionObjective

TINY = {"label_dim": 16, "hidden_dims": (16, 8), "train": {"max_epochs": 2, "patience": 1, "batch_size": 16},
        "ensemble_size": 2, "ensemble_dev_size": 8}
EXTRA = "semeval2024-task4"


def text_only(meme: Meme, source: str | None = None) -> Meme:
    return replace(meme, id=f"{source or 'own'}/{meme.id}", image=None, source=source)


@pytest.fixture(scope="module")
def semeval(tiny_data_root_module):
    """Own train memes (one without an image), extra text-only memes, dev, and memes of each kind to
    predict."""
    task = get_task("semeval-t6")
    train, dev, test = (load_split(task, split) for split in ("train", "dev", "test"))
    train = train + [text_only(train[0])]
    extra = [text_only(m, EXTRA) for m in train[:12]]
    mixed = test[:3] + [text_only(test[3]), replace(test[4], id="image-only", text="")]
    return task, train, extra, dev, mixed


# --- selection on the task's own memes ----------------------------------------------------------------------
def old_member_splits(n_train, n_total, size, dev_size, seed, has_val):
    """Reference: the draw over every row, which a pool of own memes only must reproduce exactly."""
    rng = np.random.default_rng(seed)
    splits = [(np.arange(n_train), np.arange(n_train, n_total))] if has_val else []
    while len(splits) < size:
        perm = rng.permutation(n_total)
        splits.append((np.sort(perm[dev_size:]), np.sort(perm[:dev_size])))
    return splits


@pytest.mark.parametrize("has_val", [True, False])
def test_splits_without_extra_memes_are_the_old_ones(has_val):
    for own in (None, np.ones(30, dtype=bool)):
        new = member_splits(24, 30, 4, 6, seed=3, has_val=has_val, own=own)
        old = old_member_splits(24, 30, 4, 6, 3, has_val)
        for (train, dev), (old_train, old_dev) in zip(new, old, strict=True):
            np.testing.assert_array_equal(train, old_train)
            np.testing.assert_array_equal(dev, old_dev)


def test_dev_memes_are_own_and_extra_memes_always_train():
    own = np.ones(30, dtype=bool)
    own[[3, 7, 20, 26, 27]] = False  # extra memes in train and in val
    for train, dev in member_splits(20, 30, 5, 6, seed=0, has_val=True, own=own):
        assert own[dev].all() and not set(train) & set(dev)
        assert {3, 7, 20, 26, 27} <= set(train) and len(train) + len(dev) == 30
    assert list(member_splits(20, 30, 1, 6, 0, True, own)[0][1]) == [21, 22, 23, 24, 25, 28, 29]


class Recorder(LabelAttentionEnsemble):
    """Trains nothing: records what each member would be trained and selected on."""

    def inputs(self, memes, progress=False):
        return {"row": torch.arange(len(memes))}

    def fit_member(self, member, seed, memes, train, dev):
        self.seen.append((memes, train, dev))
        return nn.Identity()

    def _member_proba(self, net, tensors):
        return np.full((len(tensors["row"]), self.task.num_labels), 0.5, dtype=np.float32)


def synthetic(n: int, prefix: str, task, source=None) -> list[Meme]:
    return [Meme(f"{prefix}{i}", f"text {i}", None, (task.labels[i % 5],), source) for i in range(n)]


def test_fit_selects_on_own_memes_and_weights_extra_ones():
    task = get_task("semeval-t6")
    train, val = synthetic(30, "own", task), synthetic(8, "val", task)
    extra = synthetic(40, "ptc", task, "ptc")  # more extra memes than own: a pool-wide draw would pick some
    config = LabelAttentionConfig(ensemble_size=4, ensemble_dev_size=6, source_weights={"ptc": 0.25})
    model = Recorder(task, config)
    model.seen = []
    model.fit(train + extra, eval_memes=val)
    pool = train + extra + val
    for memes, train_rows, dev_rows in model.seen:
        assert all(pool[i].source is None for i in dev_rows["row"].tolist())
        assert {m.id for m in extra} <= {m.id for m in memes}
        weights = dict(zip([m.id for m in memes], train_rows["weight"].tolist()))
        assert weights["ptc0"] == 0.25 and weights["own0"] == 1.0
    assert [len(y) for y, _ in model.held_out_members] == [8, 6, 6, 6]
    assert model.training_data == {"own": 38, "ptc": 40}

    plain = Recorder(task, config)
    plain.seen = []
    plain.fit(train, eval_memes=val)  # no extra memes: the reference draw
    old = old_member_splits(30, 38, 4, 6, 0, True)
    assert [dev["row"].tolist() for _, _, dev in plain.seen] == [list(d) for _, d in old]


# --- label attention ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("task_name", ["semeval-t6", "harm-c-3"])
def test_weighted_loss(task_name):
    task = get_task(task_name)
    config = LabelAttentionConfig(label_dim=8, hidden_dims=(8, 4))
    module = LabelAttentionObjective(LabelAttentionNet(4, 12, 20, config), task, TrainConfig())
    torch.manual_seed(0)
    width = task.num_labels
    logits = torch.randn(5, width)
    if task.multi_label:
        labels = (torch.rand(5, width) < 0.3).float()
    else:
        labels = torch.eye(task.num_labels)[[0, 2, 1, 0, 2]]
    assert torch.equal(module.loss(logits, labels, torch.ones(5)), module.loss(logits, labels))
    # Weight 2 counts a row twice; weight 0 leaves it out.
    twice = module.loss(logits[[0, 0, 1, 2]], labels[[0, 0, 1, 2]])
    torch.testing.assert_close(module.loss(logits[:4], labels[:4], torch.tensor([2.0, 1, 1, 0])), twice)


def test_training_step_reads_the_weights():
    task = get_task("semeval-t6")
    config = LabelAttentionConfig(label_dim=8, hidden_dims=(8, 4))
    torch.manual_seed(0)
    module = LabelAttentionObjective(LabelAttentionNet(task.num_labels, 12, 20, config), task, TrainConfig()).eval()
    batch = {"text_tokens": torch.randn(3, 5, 12), "text_mask": torch.ones(3, 5, dtype=torch.bool),
             "image_grid": torch.randn(3, 49, 20), "labels": (torch.rand(3, task.num_labels) < 0.3).float()}
    first = {k: v[:1] for k, v in batch.items()}
    with warnings.catch_warnings():  # self.log outside a Trainer
        warnings.simplefilter("ignore")
        weighted = module.training_step({**batch, "weight": torch.tensor([1.0, 0, 0])}, 0)
    torch.testing.assert_close(weighted, module.loss(module.net(first)[0], first["labels"]))


def test_rows_with_nothing_to_attend_to_get_zero_attention():
    config = LabelAttentionConfig(label_dim=8, hidden_dims=(8, 4))
    net = LabelAttentionNet(4, 12, 20, config).eval()
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1] = False
    batch = {"text_tokens": torch.randn(2, 5, 12), "text_mask": mask, "image_grid": torch.randn(2, 49, 20),
             "image_present": torch.tensor([True, False])}
    logits, alphas = net(batch)
    assert torch.isfinite(logits).all()
    assert torch.all(alphas["image"][1] == 0) and torch.all(alphas["text"][1] == 0)
    assert torch.allclose(alphas["image"][0].sum(-1), torch.ones(4))


@pytest.fixture(scope="module")
def label_attention(semeval):
    task, train, extra, dev, _ = semeval
    return LabelAttentionEnsemble(task, LabelAttentionConfig(**TINY)).fit(train + extra, eval_memes=dev)


def test_label_attention_trains_and_predicts_memes_without_image_or_text(label_attention, semeval):
    model, (task, train, extra, dev, mixed) = label_attention, semeval
    assert model.training_data == {"own": len(train) + len(dev), EXTRA: len(extra)}
    proba = model.predict_proba(mixed)
    assert proba.shape == (len(mixed), task.num_labels) and np.isfinite(proba).all()

    tensors = model.inputs(mixed, progress=False)
    present = tensors["image_present"]
    assert present.tolist() == [True, True, True, False, True]
    assert tensors["text_mask"][4].sum() >= 1  # empty text: still the special tokens
    legacy = {k: v for k, v in tensors.items() if k != "image_present"}
    for net in model.members:
        with torch.inference_mode():
            masked, old = net(tensors)[0], net(legacy)[0]
        assert torch.equal(masked[present], old[present])  # memes with an image: unchanged
        assert not torch.allclose(masked[~present], old[~present])  # the zero grid is not read as an image

    records = model.predict(mixed, explain=True)
    assert "image_grid" not in records[3]["explanation"]["Smears"]
    assert np.array(records[4]["explanation"]["Smears"]["image_grid"]).shape == (7, 7)
    assert records[4]["explanation"]["Smears"]["tokens"] == []  # only special tokens, which are never shown


# --- SimRe --------------------------------------------------------------------------------------------------
def test_simre_trains_on_memes_with_images_and_predicts_every_meme(semeval):
    task, train, extra, dev, mixed = semeval
    # pixel mixing reads image files: a text-only meme among the pairs would fail
    config = SimReConfig(width=16, heads=2, ff_dim=32, train={"max_epochs": 1, "batch_size": 8}, pixel_pairs=8)
    model = SimReModel(task, config).fit(train + extra, eval_memes=dev)
    assert model.training_data == {"own": len(train) - 1 + len(dev)}  # what it learnt from: memes with images
    proba = model.predict_proba(mixed)
    assert proba.shape == (len(mixed), task.num_labels) and np.isfinite(proba).all()
    assert len(model.predict(mixed, explain=True)) == len(mixed)


def test_simre_with_no_image_to_learn_from_is_a_clear_error(semeval):
    from memecat.errors import MemecatError

    task, train, _, dev, _ = semeval
    with pytest.raises(MemecatError, match="memes with an image"):
        SimReModel(task, SimReConfig(width=16, heads=2, ff_dim=32, train={"max_epochs": 1})).fit(
            [text_only(m) for m in train[:20]], eval_memes=dev)
