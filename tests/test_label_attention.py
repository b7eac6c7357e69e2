import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from memecat.models.base import load_model
from memecat.models.ensemble import member_splits
from memecat.models.label_attention import LabelAttentionConfig, LabelAttentionEnsemble, LabelAttentionNet
from memecat.tasks import get_task, load_split

TINY = {"label_dim": 16, "hidden_dims": (16, 8), "train": {"max_epochs": 2, "patience": 1, "batch_size": 16},
        "ensemble_size": 2, "ensemble_dev_size": 8}


def _batch(b=3, t=5, n_labels=4):
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, 3:] = False
    return {"text_tokens": torch.randn(b, t, 12), "text_mask": mask, "image_grid": torch.randn(b, 49, 20)}


@pytest.mark.parametrize("attention,parts", [("none", 2), ("image", 3), ("text", 3), ("both", 4)])
def test_net_shapes_and_variants(attention, parts):
    net = LabelAttentionNet(4, 12, 20, LabelAttentionConfig(attention=attention, label_dim=8, hidden_dims=(8, 4)))
    assert net.classifier[0].in_features == 8 * parts
    logits, alphas = net(_batch())
    assert logits.shape == (3, 4)
    if attention in ("text", "both"):
        assert alphas["text"].shape == (3, 4, 5)
        assert torch.all(alphas["text"][0, :, 3:] == 0)  # padding gets no attention
        assert torch.allclose(alphas["text"].sum(-1), torch.ones(3, 4))
    if attention in ("image", "both"):
        assert alphas["image"].shape == (3, 4, 49)


def test_avg_pooling_only_scores_every_label_alike():
    # Without attention nothing label-specific reaches the shared classifier: the paper's weak first row.
    net = LabelAttentionNet(4, 12, 20, LabelAttentionConfig(attention="none", label_dim=8, hidden_dims=(8, 4)))
    logits, _ = net.eval()(_batch())
    assert torch.allclose(logits, logits[:, :1].expand_as(logits))


def test_member_splits_original_first_then_random_devs():
    splits = member_splits(10, 13, size=3, dev_size=4, seed=0, has_val=True)
    assert list(splits[0][1]) == [10, 11, 12] and len(splits) == 3
    for train_idx, dev_idx in splits[1:]:
        assert len(dev_idx) == 4 and not set(train_idx) & set(dev_idx)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data_root_module):
    task = get_task("semeval-t6")
    model = LabelAttentionEnsemble(task, LabelAttentionConfig(**TINY))
    model.fit(load_split(task, "train"), eval_memes=load_split(task, "dev"))
    folder = model.save_pretrained(tmp_path_factory.mktemp("la") / "model")
    return model, folder


def test_fit_save_load_predict_roundtrip(trained):
    model, folder = trained
    memes = load_split(model.task, "dev")
    loaded = load_model(folder)
    assert len(loaded.members) == 2
    np.testing.assert_allclose(loaded.predict_proba(memes), model.predict_proba(memes), atol=1e-6)
    assert loaded.predict(memes) == model.predict(memes)


def test_weights_of_another_shape_are_a_clear_error(trained, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from memecat.errors import MemecatError

    folder = shutil.copytree(trained[1], tmp_path / "model")
    state = load_file(str(folder / "model.safetensors"))
    name = next(n for n in state if n.endswith("label_embeddings"))
    state[name] = state[name][:, :-1].contiguous()  # as if saved by a version with another label dimension
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(MemecatError, match=r"model\.safetensors: weights do not fit .*label-attention"):
        load_model(folder)


def test_thresholds_come_from_each_members_unseen_dev_memes(trained):
    model, _ = trained
    task = model.task
    train, dev = load_split(task, "train"), load_split(task, "dev")
    pool = train + dev
    splits = member_splits(len(train), len(pool), 2, 8, model.config.seed, has_val=True)
    tensors = model.inputs(pool, progress=False)
    for net, (held_y, held_p), (_, dev_idx) in zip(model.members, model.held_out_members, splits):
        np.testing.assert_array_equal(held_y, task.encode(pool)[dev_idx])  # member 0: the original dev split
        np.testing.assert_allclose(held_p, model._member_proba(net, {k: v[dev_idx] for k, v in tensors.items()}),
                                   atol=1e-6)
    pooled_y, pooled_p = model.held_out
    assert len(pooled_y) == len(pooled_p) == len(dev) + 8


def test_explanations_have_tokens_and_a_7x7_grid(trained):
    model, _ = trained
    [record] = model.predict(load_split(model.task, "dev")[:1], explain=True)
    entry = record["explanation"]["Smears"]
    assert 0 < len(entry["tokens"]) <= 8 and all(t["token"] not in ("[CLS]", "[SEP]") for t in entry["tokens"])
    grid = np.array(entry["image_grid"])
    assert grid.shape == (7, 7) and grid.sum() == pytest.approx(1.0, abs=1e-2)
    assert set(record["scores"]) == set(model.task.labels)


def test_same_seed_same_predictions(trained):
    model, _ = trained
    again = LabelAttentionEnsemble(model.task, LabelAttentionConfig(**TINY))
    again.fit(load_split(model.task, "train"), eval_memes=load_split(model.task, "dev"))
    memes = load_split(model.task, "test")
    np.testing.assert_allclose(again.predict_proba(memes), model.predict_proba(memes), atol=1e-6)


DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    from memecat.models.label_attention import *
    from memecat.tasks import get_task
    from memecat.training import TrainConfig
    from memecat.training.label_attention import LabelAttentionObjective
    from memecat.training.loop import fit_module

    out = sys.argv[1]
    task = get_task("semeval-t6")
    cfg = LabelAttentionConfig(label_dim=16, hidden_dims=(16, 8), ensemble_size=1, finetune_layers=0)
    torch.manual_seed(0)
    n = 32
    data = {"text_tokens": torch.randn(n, 6, 384), "text_mask": torch.ones(n, 6, dtype=torch.bool),
            "image_grid": torch.randn(n, 49, 1280), "labels": (torch.rand(n, 22) < 0.2).float()}
    model = LabelAttentionEnsemble(task, cfg)
    net = LabelAttentionNet(22, 384, 1280, cfg)
    train = TrainConfig(max_epochs=2, batch_size=8, devices=2, strategy="ddp")
    module = fit_module(LabelAttentionObjective(net, task, train), data, data, train, seed=0,
                        log_dir=out + "/logs", progress=False)
    rank = module.trainer_global_rank
    torch.save(net.state_dict(), f"{out}/rank{rank}.pt")
    if rank == 0:
        model.members = [net]
        model.thresholds, model.class_offsets = torch.full((22,), 0.5).numpy(), torch.zeros(22).numpy()
        model.save_pretrained(out + "/model")
""")


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path, tiny_data_root):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=False,
                          timeout=600, env={**__import__("os").environ, "PL_DISABLE_FORK": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    model = load_model(tmp_path / "model")
    records = model.predict(load_split(model.task, "test"))
    assert len(records) == 6 and all(set(r) == {"id", "labels"} for r in records)
