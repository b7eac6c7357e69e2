import json

import pytest
from click.testing import CliRunner

from memecat.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_train_predict_evaluate_majority(tiny_data_root, tmp_path):
    out = tmp_path / "model"
    result = invoke("train", "--task", "semeval-t6", "--model", "majority", "--out", out)
    assert result.exit_code == 0, result.output
    assert "dev: micro_f1=" in result.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["task"] == "semeval-t6" and meta["model_type"] == "majority" and len(meta["labels"]) == 22

    pred = tmp_path / "pred.json"
    assert invoke("predict", "--model", out, "--split", "test", "--out", pred).exit_code == 0
    records = json.loads(pred.read_text())
    assert len(records) == 6 and all(set(r) == {"id", "labels"} for r in records)

    dev_pred = tmp_path / "dev.json"
    invoke("predict", "--model", out, "--split", "dev", "--out", dev_pred)
    gold = tiny_data_root / "semeval2021-task6/dev_set_task3_labeled/dev_set_task3_labeled.txt"
    result = invoke("evaluate", "--task", "semeval-t6", "--pred", dev_pred, "--gold", gold, "--json")
    scores = json.loads(result.output)
    assert set(scores) == {"micro_f1", "macro_f1"} and 0 < scores["micro_f1"] <= 1


def test_harm_predictions_name_a_level(tiny_data_root, tmp_path):
    out = tmp_path / "m"
    invoke("train", "--task", "harm-c-3", "--model", "majority", "--out", out)
    pred = tmp_path / "p.json"
    invoke("predict", "--model", out, "--split", "val", "--out", pred)
    records = json.loads(pred.read_text())
    assert all(len(r["labels"]) == 1 and r["labels"][0].endswith("harmful") for r in records)
    gold = tiny_data_root / "harm-c/val.jsonl"
    scores = json.loads(invoke("evaluate", "--task", "harm-c-3", "--pred", pred, "--gold", gold, "--json").output)
    assert set(scores) == {"acc", "macro_f1", "mmae"}


@pytest.mark.parametrize("args,message", [
    (["train", "--task", "nope", "--model", "majority", "--out", "x"], "unknown task 'nope'"),
    (["train", "--task", "semeval-t6", "--model", "nope", "--out", "x"], "unknown model 'nope'"),
    (["train", "--task", "semeval-t6", "--model", "majority", "--out", "x", "--data-root", "/no/such"],
     "data root /no/such not found"),
    (["predict", "--model", "/no/such/model", "--split", "test"], "model folder not found"),
])
def test_user_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_bad_config_option_is_named(tiny_data_root, tmp_path):
    recipe = tmp_path / "c.yaml"
    recipe.write_text("model: label-attention\nconfig:\n  label_dim: 16\n  train: {learning_rate_typo: 3}\n")
    result = CliRunner().invoke(cli, ["train", "--task", "semeval-t6", "--out", str(tmp_path / "m"),
                                      "--recipe", str(recipe)])
    assert result.exit_code == 2 and "train.learning_rate_typo" in result.output
    result = CliRunner().invoke(cli, ["train", "--task", "semeval-t6", "--model", "simre", "--out", "m",
                                      "--recipe", "label-attention-frozen"])
    assert result.exit_code == 2 and "is for model 'label-attention', not 'simre'" in result.output


def test_damaged_model_folders(tiny_data_root, tmp_path):
    out = tmp_path / "m"
    invoke("train", "--task", "semeval-t6", "--model", "majority", "--out", out)
    (out / "model.safetensors").write_bytes(b"garbage")
    result = CliRunner().invoke(cli, ["predict", "--model", str(out), "--split", "test"])
    assert result.exit_code == 2 and "damaged weights file" in result.output
    meta = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    result = CliRunner().invoke(cli, ["predict", "--model", str(out), "--split", "test"])
    assert result.exit_code == 2 and "format 99" in result.output
    (out / "config.json").write_text("{broken")
    result = CliRunner().invoke(cli, ["predict", "--model", str(out), "--split", "test"])
    assert result.exit_code == 2 and "damaged model config" in result.output


def test_data_check_lists_every_problem(tmp_path):
    from conftest import make_image

    make_image(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "d.json").write_text(json.dumps([
        {"id": "1", "text": "fine", "image": "ok.png", "labels": ["Smears"]},
        {"id": "2", "text": "bad image", "image": "bad.png"},
        {"id": "3", "text": "missing image", "image": "gone.png"},
        {"id": "4", "text": "odd label", "image": "ok.png", "labels": ["Sarcasm"]},
        {"id": "1", "text": "dup", "image": "ok.png"},
    ]))
    result = CliRunner().invoke(cli, ["data", "check", str(tmp_path / "d.json"), "--task", "semeval-t6"])
    assert result.exit_code == 1
    out = result.output
    assert "duplicate id" in out and "[id 2]: image bad.png" in out and "[id 3]" in out and "Sarcasm" in out
    assert "4 problem(s)" in out


def test_run_main_job_writes_model_and_predictions(data_root, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--out", out)
    assert result.exit_code == 0, result.output
    assert "dev (12 memes): micro_f1=" in result.output
    assert "refit on train+dev (52 memes)" in result.output  # the shipped model learns from every label
    assert len(json.loads((out / "test_predictions.json").read_text())) == 6
    assert len(json.loads((out / "dev_predictions.json").read_text())) == 12
    meta = json.loads((out / "model" / "config.json").read_text())
    assert meta["model_type"] == "linear-probe" and meta["recipe"] == "linear-probe-semeval2024"
    # The best recipe's extra sources train the shipped model too; none of their memes is scored.
    assert set(meta["training_data"]) == {"own", "semeval2024-task4"}
    assert meta["training_data"]["own"] == 52
    card = (out / "model" / "README.md").read_text()
    assert "linear-probe-semeval2024" in card and "memecat.load_model" in card and "0.5868 ± 0.0045" in card
    assert "dev (12 memes), scored by the same recipe fitted on train + 30 extra" in card
    result = invoke("run", "--out", tmp_path / "plain", "--model", "linear-probe", "--no-refit")
    assert json.loads((tmp_path / "plain" / "model" / "config.json").read_text())["training_data"] == {"own": 40}


def test_run_trains_a_named_neural_model_with_lightning_logs(tiny_data_root, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("config:\n  label_dim: 8\n  hidden_dims: [8, 4]\n  ensemble_size: 2\n  ensemble_dev_size: 8\n"
                      "  train: {max_epochs: 1}\n")
    out = tmp_path / "run"
    result = invoke("run", "--model", "label-attention", "--out", out, "--recipe", recipe, "--no-refit")
    assert result.exit_code == 0, result.output
    assert "refit" not in result.output
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "label-attention"
    assert (out / "logs" / "member1" / "logs" / "version_0" / "metrics.csv").exists()  # Lightning's CSV log


def test_shipped_recipes_build_their_models_and_are_listed():
    from memecat.models.registry import create_model
    from memecat.recipes import list_recipes

    recipes = list_recipes()
    assert len(recipes) >= 8 and all(r.model and r.description for r in recipes)
    for recipe in recipes:
        create_model(recipe.model, "semeval-t6", **recipe.config)
    listing = invoke("models").output
    assert all(r.name in listing for r in recipes) and "simre" in listing and "efficientnet-lite0" in listing


def test_a_bad_output_path_fails_before_any_work(tmp_path):
    # Checked before the model is even loaded: this model folder does not exist.
    result = invoke("predict", "--model", tmp_path / "no-model", "--split", "dev", "--out", tmp_path / "pred.xlsx")
    assert result.exit_code == 2 and "cannot tell the output format" in result.output


@pytest.mark.parametrize("size", [1, 2])
def test_train_never_passes_off_a_dev_score_it_selected_on(tiny_data_root, tmp_path, size):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"model: label-attention\nconfig:\n  label_dim: 8\n  hidden_dims: [8, 4]\n"
                      f"  ensemble_size: {size}\n  ensemble_dev_size: 8\n  finetune_layers: 0\n  train: {{max_epochs: 1}}\n")
    result = invoke("train", "--task", "semeval-t6", "--out", tmp_path / "m", "--recipe", recipe)
    assert result.exit_code == 0, result.output
    if size == 1:  # one network stopped early and set its thresholds on dev: scored, but labelled
        assert "dev (chose early stopping and thresholds, so optimistic): micro_f1=" in result.output
    else:  # member 2 trained on dev: no score at all
        assert "no dev score" in result.output and "micro_f1=" not in result.output
