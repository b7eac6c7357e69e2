"""Extra training sources: readers, data check, and training with text-only memes beside the task's own.

`data_root` (conftest) is the tiny task data with tiny SemEval-2024, PTC and Harm-P folders beside it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from memecat.cli import cli
from memecat.data.check import check_path
from memecat.data.meme import Meme
from memecat.data.sources import PTC_LABELS, load_sources, parse_sources, scan_ptc, scan_semeval2024
from memecat.errors import DataError, MemecatError
from memecat.evaluation import cross_validate
from memecat.models.base import load_model
from memecat.models.linear_probe import LinearProbe, LinearProbeConfig
from memecat.tasks import get_task, load_split


def test_every_semeval_2024_technique_is_a_2021_technique_and_line_breaks_are_real(data_root):
    memes, problems = scan_semeval2024(data_root)
    assert not problems and len(memes) == 30
    first = memes[0]
    assert first.text == "they lie always\nsad" and first.image is None
    assert first.id == "semeval2024-task4/0" and first.source == "semeval2024-task4"
    get_task("semeval-t6").encode(memes)  # raises on a label outside the 22


def test_ptc_mapping_covers_real_2021_techniques_only():
    labels = set(get_task("semeval-t6").labels)
    assert all(set(mapped) <= labels for mapped in PTC_LABELS.values())


def test_ptc_sentences_gather_their_fragments_and_merged_classes_follow_the_rule(data_root):
    memes, problems = scan_ptc(data_root, context="sentence", merged="all")
    assert not problems
    by_text = {m.text: set(m.labels) for m in memes}
    assert by_text["They are traitors and liars."] == {"Name calling/Labeling", "Loaded Language"}
    assert by_text["We stand for America!"] == {"Flag-waving", "Whataboutism", "Presenting Irrelevant Data (Red Herring)",
                                                "Misrepresentation of Someone's Position (Straw Man)"}
    dropped, _ = scan_ptc(data_root, context="sentence", merged="drop")
    assert {m.text: set(m.labels) for m in dropped}["We stand for America!"] == {"Flag-waving"}
    fragments, _ = scan_ptc(data_root, context="fragment")
    assert sorted(m.text for m in fragments)[:2] == ["We stand", "We stand for America!"]


@pytest.mark.parametrize("line,problem", [
    ("1\tLoaded_Language\t5\t9999", "line 5: offsets 5-9999 lie outside article 1 (81 characters)"),
    ("1\tAstroturfing\t5\t9", "line 5: technique 'Astroturfing' is not in the PTC mapping table"),
])
def test_a_broken_ptc_label_line_is_one_error_naming_the_line(data_root, line, problem):
    path = data_root / "ptc-semeval2020-task11" / "train-task2-TC.labels"
    path.write_text(path.read_text() + line + "\n")
    problems, _ = check_path(data_root / "ptc-semeval2020-task11")
    assert [p.problem for p in problems] == [problem] and str(path) in str(problems[0])
    with pytest.raises(DataError, match=problem.split(":")[0]):
        load_sources("semeval-t6", ("ptc",), data_root)


def test_data_check_reads_source_folders_and_names_only_what_is_wrong(data_root):
    problems, count = check_path(data_root / "semeval2024-task4")
    assert not problems and count == 39  # train and val
    problems, count = check_path(data_root / "harm-p")
    assert count == 19 and [(p.record_id, "empty label" in p.problem) for p in problems] == [("bad", True)]
    problems, count = check_path(data_root / "semeval2021-task6", decode_images=False)
    assert not problems and count == 58


def test_sources_are_named_checked_against_the_task_and_skip_a_record_with_an_empty_label(data_root, capsys):
    assert parse_sources(["semeval2024-task4,ptc", "ptc"]) == ("semeval2024-task4", "ptc")
    assert parse_sources("none") == ()
    memes = load_sources("harm-c-3", ("harm-p",), data_root)
    assert len(memes) == 19 and "skipped" in capsys.readouterr().err
    get_task("harm-c-3").encode(memes)
    # The target task learns from harmful memes that name a target; one without is named and skipped.
    memes = load_sources("harm-c-target", ("harm-p",), data_root)
    assert len(memes) == 9 and "[id harm-p/untargeted]" in capsys.readouterr().err
    get_task("harm-c-target").encode(memes)
    with pytest.raises(MemecatError, match="unknown extra data source 'wiki'"):
        load_sources("semeval-t6", ("wiki",), data_root)
    with pytest.raises(MemecatError, match="not task semeval-t6"):
        load_sources("semeval-t6", ("harm-p",), data_root)


def test_probe_learns_from_text_only_memes_and_predicts_memes_with_one_modality(data_root, tmp_path):
    task = get_task("semeval-t6")
    own = load_split(task, "train")
    extra = load_sources(task.name, ("semeval2024-task4", "ptc"), data_root)
    model = LinearProbe(task, LinearProbeConfig(folds=3, extra_data=("semeval2024-task4", "ptc"),
                                                source_weights={"ptc": 0.5})).fit(own + extra)
    assert model.training_data == {"own": 40, "ptc": 2, "semeval2024-task4": 30}
    dev = load_split(task, "dev")
    text_only = [Meme(id=f"t{m.id}", text=m.text, image=None) for m in dev]
    image_only = [Meme(id=f"i{m.id}", text="", image=m.image) for m in dev]
    for memes in (text_only, image_only):
        proba = model.predict_proba(memes)
        assert np.isfinite(proba).all() and len(model.predict(memes)) == len(memes)
    # A text-only meme is read by the text views alone: its image view says nothing, not "a black image".
    [record] = model.predict(text_only[:1], explain=True)
    assert "image-encoder" not in record["explanation"][task.labels[8]]["views"]
    loaded = load_model(model.save_pretrained(tmp_path / "m"))
    assert loaded.training_data == model.training_data
    np.testing.assert_allclose(loaded.predict_proba(text_only), model.predict_proba(text_only), atol=1e-5)


def test_extra_memes_change_nothing_when_a_view_is_told_to_ignore_them(data_root):
    task = get_task("semeval-t6")
    own = load_split(task, "train")
    extra = load_sources(task.name, ("semeval2024-task4",), data_root)
    config = {"folds": 3, "views": ("word-ngrams",)}
    alone = LinearProbe(task, LinearProbeConfig(**config)).fit(own)
    ignoring = LinearProbe(task, LinearProbeConfig(**config, extra_views=())).fit(own + extra)
    learning = LinearProbe(task, LinearProbeConfig(**config)).fit(own + extra)
    dev = load_split(task, "dev")
    np.testing.assert_allclose(ignoring.predict_proba(dev), alone.predict_proba(dev), atol=1e-6)
    np.testing.assert_array_equal(ignoring.thresholds, alone.thresholds)
    assert not np.allclose(learning.predict_proba(dev), alone.predict_proba(dev), atol=1e-3)


def test_cross_validation_scores_only_the_tasks_own_memes(data_root):
    task = get_task("semeval-t6")
    memes = load_split(task, "train")
    extra = load_sources(task.name, ("semeval2024-task4",), data_root)
    seen = []

    class Spy(LinearProbe):
        def predict_proba(self, memes):
            seen.extend(memes)
            return super().predict_proba(memes)

    result = cross_validate(task, lambda s: Spy(task, LinearProbeConfig(folds=3, views=("word-ngrams",), seed=s)),
                            memes, folds=3, extra=extra)
    assert sorted(m.id for m in seen) == sorted(m.id for m in memes)
    assert result["oof_pred"].shape == (len(memes), task.num_labels)


def test_train_with_extra_data_records_the_sources_in_the_model_folder(data_root, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", "--task", "harm-c-2", "--model", "linear-probe", "--out", str(out),
                                      "--extra-data", "harm-p"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["extra_data"] == ["harm-p"]
    assert meta["training_data"] == {"own": 39, "harm-p": 19}
    result = CliRunner().invoke(cli, ["cv", "--task", "harm-c-2", "--model", "majority", "--extra-data", "nope"])
    assert result.exit_code == 2 and "unknown extra data source 'nope'" in result.output


def test_a_source_weighs_its_default_unless_the_config_names_another():
    task = get_task("semeval-t6")
    memes = [Meme("a", "x", None), Meme("b", "x", None, source="ptc"), Meme("c", "x", None, source="semeval2024-task4")]
    assert LinearProbe(task).sample_weights(memes).tolist() == pytest.approx([1.0, 0.3, 1.0])
    config = LinearProbeConfig(source_weights={"ptc": 2.0})
    assert LinearProbe(task, config).sample_weights(memes).tolist() == pytest.approx([1.0, 2.0, 1.0])


def test_pooled_features_alone_equal_those_of_the_full_path(tiny_data_root):
    # The probe asks for pooled vectors only (no grids, no token states: gigabytes on 8,000 memes); they must be
    # the very values the neural models' full path gives, for memes with and without an image or text.
    import torch

    from memecat.features import FeatureExtractor

    dev = load_split(get_task("semeval-t6"), "dev")
    memes = dev[:4] + [Meme("t", dev[4].text, None)] + [Meme("i", "", dev[5].image)]
    features = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0")
    full, pooled = features.encode(memes), features.encode(memes, pooled_only=True)
    assert set(pooled) == {"text_pooled", "image_pooled", "image_present"}
    assert all(torch.equal(pooled[key], full[key]) for key in pooled)
    assert pooled["image_present"].tolist() == [True] * 4 + [False, True]
