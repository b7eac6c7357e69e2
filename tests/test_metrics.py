import numpy as np
import pytest

from memecat.metrics import harm_scores, mean_label_auc, mmae, per_label_table, semeval_scores


def test_semeval_micro_macro_by_hand():
    # 3 labels, 2 memes. Label 0: TP=1 FN=1 -> F1 2/3; label 1: TP=1 FP=1 -> 2/3; label 2: never gold nor
    # predicted -> F1 0 (zero_division=0), which still counts in the macro mean.
    gold = np.array([[1, 1, 0], [1, 0, 0]])
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    s = semeval_scores(gold, pred)
    assert s["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # TP=2 FP=1 FN=1
    assert s["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_per_label_table_support():
    rows = per_label_table(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert rows[0] == {"label": "a", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rows[1]["support"] == 1 and rows[1]["f1"] == 0.0


def test_mmae_by_hand():
    # class 0: errors 0,2 -> 1.0 ; class 2: error 1 -> 1.0 ; class 1: error 0 -> 0  => mean 2/3
    assert mmae(np.array([0, 0, 1, 2]), np.array([0, 2, 1, 1])) == pytest.approx(2 / 3)


def test_harm_scores():
    s = harm_scores(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), ordinal=True)
    assert s["acc"] == 0.75 and "mmae" in s
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_mean_label_auc_skips_labels_that_cannot_be_ranked():
    gold = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    proba = np.array([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5], [0.8, 0.1, 0.5], [0.2, 0.3, 0.5]])
    # label 0 ranked perfectly (AUC 1), label 1 half right (AUC 0.5), label 2 never occurs: skipped
    assert mean_label_auc(gold, proba) == pytest.approx(0.75)
