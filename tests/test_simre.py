"""SimRe: the loss against a hand computation, recreation, prompts, the transformer, and a save/load round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memecat.models.simre import BE, NOT, SimReConfig, SimReModel, SimReNet, prompt_texts, to_task_scores
from memecat.tasks import get_task
from memecat.training.simre import SimReLoss, join, prompt_polarity, recreate, training_categories


def test_loss_matches_hand_computation():
    # 2 rows, 2-d unit vectors: s+ = [[1, 0], [0.6, 0.8]] . rows, s- chosen to give easy dot products.
    text_pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    image_pos = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text_neg = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    image_neg = torch.tensor([[0.0, 1.0], [0.8, 0.6]])
    tau = 0.5
    # s+ = [[1, .6], [0, .8]], s- = [[1, .6], [0, .8]]
    loss_0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0.6 / tau) + math.exp(1 / tau)
                                            + math.exp(0.6 / tau)))
    loss_1 = -math.log(math.exp(0.8 / tau) / (math.exp(0.8 / tau) + math.exp(0 / tau) + math.exp(0 / tau)
                                              + math.exp(0.8 / tau)))
    loss = SimReLoss(tau)(text_pos, image_pos, text_neg, image_neg)
    assert loss.item() == pytest.approx((loss_0 + loss_1) / 2, abs=1e-6)
    logits_pos, logits_neg = SimReLoss(tau).get_logits(text_pos, image_pos, text_neg, image_neg)
    assert torch.allclose(logits_pos, torch.tensor([[2.0, 1.2], [0.0, 1.6]]))
    assert torch.allclose(logits_neg, torch.tensor([[2.0, 1.2], [0.0, 1.6]]))


def test_recreation_mixes_images_concatenates_texts_ors_labels():
    a = {"image_grid": torch.ones(1, 49, 3), "text_tokens": torch.full((1, 2, 4), 1.0),
         "text_mask": torch.tensor([[True, False]]), "labels": torch.tensor([[1.0, 0.0, 0.0]])}
    b = {"image_grid": torch.zeros(1, 49, 3), "text_tokens": torch.full((1, 3, 4), 2.0),
         "text_mask": torch.tensor([[True, True, False]]), "labels": torch.tensor([[0.0, 1.0, 0.0]])}
    mixed = torch.full((1, 49, 3), 0.3)
    out = recreate(a, b, mixed)
    assert out["image_grid"] is mixed
    assert out["text_tokens"][0, :, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]  # text a, then text b
    assert out["text_mask"].tolist() == [[True, False, True, True, False]]
    assert out["labels"].tolist() == [[1.0, 1.0, 0.0]]
    joined = join(a, out)
    assert joined["text_tokens"].shape == (2, 5, 4) and joined["text_mask"][0].tolist() == [True] + [False] * 4


def test_prompts_consistent_with_labels():
    task = get_task("semeval-t6")
    texts = prompt_texts(task)
    assert texts[0] == f"My technique is {task.labels[0]}." and texts[1] == f"My technique is not {task.labels[0]}."
    consistent, inconsistent = prompt_polarity(torch.tensor([[1.0, 0.0]]))
    assert consistent.tolist() == [[BE, NOT]] and inconsistent.tolist() == [[NOT, BE]]
    categories = training_categories(torch.tensor([[0.0, 0.0, 1.0, 0.0, 1.0]]), 3)
    assert set(categories[0, :2].tolist()) == {2, 4}  # true categories always among the rows


def test_two_class_task_prompts_its_positive_class_only():
    task = get_task("harm-c-2")
    assert prompt_texts(task) == ["This meme is harmful.", "This meme is not harmful."]
    # "harmful" wins exactly when its be-prompt wins (score above 0.5); "not harmful" takes the rest.
    scores = to_task_scores(torch.tensor([[0.7], [0.2]]), task)
    np.testing.assert_allclose(scores.numpy(), [[0.3, 0.7], [0.8, 0.2]], atol=1e-6)
    assert len(prompt_texts(get_task("harm-c-3"))) == 6  # one be/not pair per level


def test_prompt_wording_comes_from_the_config_when_given():
    from memecat.errors import MemecatError

    task = get_task("semeval-t6")
    config = SimReConfig(be_prompt="This meme uses {label}.", not_prompt="This meme avoids {label}.")
    assert prompt_texts(task, config)[:2] == [f"This meme uses {task.labels[0]}.", f"This meme avoids {task.labels[0]}."]
    with pytest.raises(MemecatError, match="its own be- and not-text"):
        prompt_texts(task, SimReConfig(be_prompt="Propaganda.", not_prompt="Not propaganda."))
    with pytest.raises(MemecatError, match="only {label}"):
        prompt_texts(task, SimReConfig(be_prompt="It is {technique}."))


def test_prompted_labels_must_leave_at_most_one_label_of_a_single_label_task():
    import dataclasses

    with pytest.raises(ValueError, match="prompted_labels"):
        dataclasses.replace(get_task("harm-c-3"), prompted_labels=("very harmful",))
    with pytest.raises(ValueError, match="prompted_labels"):
        dataclasses.replace(get_task("semeval-t6"), prompted_labels=(get_task("semeval-t6").labels[0],))


def test_transformer_shapes_and_unit_norm():
    config = SimReConfig(width=16, heads=2, ff_dim=32, layers=2)
    prompts = torch.randn(3, 2, 4, 8)
    net = SimReNet(prompts, torch.ones(3, 2, 4, dtype=torch.bool), text_dim=8, image_dim=12, config=config)
    batch = {"image_grid": torch.randn(5, 49, 12), "text_tokens": torch.randn(5, 6, 8),
             "text_mask": torch.tensor([[True] * 6] * 4 + [[True, False, False, False, False, False]])}
    categories = torch.tensor([[0, 1]] * 5)
    [(text, image)] = net(batch, categories, torch.zeros_like(categories))
    assert text.shape == image.shape == (5, 2, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(5, 2), atol=1e-5)
    assert torch.allclose(image.norm(dim=-1), torch.ones(5, 2), atol=1e-5)
    s_be, s_not = net.similarities(batch)
    assert s_be.shape == s_not.shape == (5, 3)


def test_temperature_is_0_2_and_format_1_folders_keep_their_per_task_rule():
    # Format-1 folders could carry `temperature: null`, which meant 0.5 on harm tasks; their thresholds were
    # chosen on that scale, so loading them must not silently rescale their margins.
    from memecat.models.base import _upgrade

    assert SimReModel(get_task("harm-c-2"), SimReConfig()).temperature == 0.2
    for task, expected in [("harm-c-3", 0.5), ("semeval-t6", 0.2)]:
        meta = {"format_version": 1, "model_type": "simre", "task": task, "config": {"temperature": None}}
        assert _upgrade(meta, "config.json")["config"]["temperature"] == expected


@pytest.mark.parametrize(("task_name", "finetune_layers"), [("semeval-t6", 0), ("harm-c-3", 0), ("harm-c-2", 1)])
def test_fit_save_load_predict_round_trip(tiny_data_root, tmp_path, task_name, finetune_layers):
    from memecat.models.base import load_model
    from memecat.tasks import VALIDATION_SPLIT, load_split

    task = get_task(task_name)
    train, dev = load_split(task, "train"), load_split(task, VALIDATION_SPLIT[task_name])
    config = SimReConfig(width=16, heads=2, ff_dim=32, pixel_pairs=8, rule="margin", finetune_layers=finetune_layers,
                         train={"max_epochs": 2, "batch_size": 8, "lr": 1e-3, "text_lr": 1e-3})
    model = SimReModel(task, config).fit(train, eval_memes=dev)
    if finetune_layers:  # the encoder's last layer trained with the model, the shared encoder left as it was
        pretrained = model.features.text_encoder.model.encoder.layer[-1]
        tuned = model.members[0].text_top.layers[-1]
        assert not torch.equal(tuned.output.dense.weight, pretrained.output.dense.weight)
        assert not pretrained.output.dense.weight.requires_grad
    test = load_split(task, "test")
    before = model.predict(test, explain=True)
    loaded = load_model(model.save_pretrained(tmp_path / "simre"))
    after = loaded.predict(test, explain=True)
    assert [r["labels"] for r in before] == [r["labels"] for r in after]
    assert task.multi_label or all(len(r["labels"]) == 1 for r in after)
    np.testing.assert_allclose(model.predict_proba(test), loaded.predict_proba(test), atol=1e-6)
    entry = after[0]["explanation"][task.labels[-1]]
    assert set(entry) == {"be", "not", "margin"}
    assert entry["margin"] == pytest.approx(entry["be"] - entry["not"], abs=2e-4)


def test_class_offsets_lift_a_class_the_scores_under_predict_and_leave_good_scores_alone():
    from memecat.models.thresholds import class_offsets

    rng = np.random.default_rng(0)
    gold = np.repeat([0, 1, 2], [60, 30, 10])
    y = np.eye(3)[gold]
    # The rare class is always runner-up for its own memes: the plain argmax never predicts it.
    proba = np.tile([0.6, 0.3, 0.1], (100, 1)) + rng.uniform(0, 0.02, (100, 3))
    proba[gold == 1] = [0.2, 0.7, 0.1]
    proba[gold == 2] = [0.5, 0.05, 0.45]
    offsets = class_offsets(y, proba)
    decided = (np.log(proba) + offsets).argmax(1)
    assert offsets[0] == 0 and offsets[2] > 0
    assert (decided == gold).all()
    np.testing.assert_array_equal(class_offsets(y, y * 0.8 + 0.1), 0)  # already right: nothing moves


def test_class_offsets_are_chosen_on_held_out_memes_saved_and_decide(tiny_data_root, tmp_path):
    from memecat.models.base import load_model
    from memecat.models.thresholds import class_offsets
    from memecat.tasks import load_split

    task = get_task("harm-c-3")
    config = SimReConfig(width=16, heads=2, ff_dim=32, train={"max_epochs": 1, "batch_size": 8}, class_offsets=True,
                         ensemble_dev_size=8)
    model = SimReModel(task, config).fit(load_split(task, "train"))
    np.testing.assert_array_equal(model.class_offsets, class_offsets(*model.held_out))
    loaded = load_model(model.save_pretrained(tmp_path / "simre"))
    np.testing.assert_array_equal(loaded.class_offsets, model.class_offsets)
    loaded.class_offsets = np.array([0, 0, 50], dtype=np.float32)  # a large offset makes its class every answer
    assert {tuple(r["labels"]) for r in loaded.predict(load_split(task, "test"))} == {(task.labels[2],)}
