"""The probe's n-gram views in numpy are scikit-learn's HashingVectorizer and TfidfTransformer to the last bit,
so folders fitted with scikit-learn predict the same without importing it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.utils import murmurhash3_32 as sklearn_murmurhash

from memecat.models.linear_probe import _expit, _softmax
from memecat.models.ngrams import NgramHasher, murmurhash3_32

TEXTS = ["THEY LIE", "", "   ", "a", "I am", "Ünïcödé  façade — naïve 😀\n\nline two\tthree",
         "vote for freedom now!!! vote", "日本語のテキスト と English", "x" * 300, "don't stop-believing 2024",
         "the the the the cat", "\u00a0non\u00a0breaking spaces", "tab\tand\r\nnewlines  here"]


@pytest.mark.parametrize(("analyzer", "ngram_range"), [("char_wb", (2, 5)), ("word", (1, 2)), ("word", (2, 3))])
@pytest.mark.parametrize("n_features", [2**17, 97])
def test_hashed_counts_are_scikit_learns(analyzer, ngram_range, n_features):
    reference = HashingVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=n_features,
                                  alternate_sign=False, norm=None).transform(TEXTS)
    reference.sort_indices()
    ours = NgramHasher(analyzer, ngram_range, n_features).transform(TEXTS)
    np.testing.assert_array_equal(ours.indptr, reference.indptr)
    np.testing.assert_array_equal(ours.indices, reference.indices)
    np.testing.assert_array_equal(ours.data, reference.data)
    sk_analyzer = HashingVectorizer(analyzer=analyzer, ngram_range=ngram_range).build_analyzer()
    ours_analyzer = NgramHasher(analyzer, ngram_range, n_features).build_analyzer()
    assert all(ours_analyzer(text) == sk_analyzer(text) for text in TEXTS)


def test_texts_without_ngrams_give_empty_rows():
    counts = NgramHasher("word", (1, 2), 2**10).transform(["", "a", "  "])
    assert counts.shape == (3, 2**10) and len(counts.data) == 0
    assert counts.tfidf(np.ones(2**10, dtype=np.float32)).toarray().sum() == 0
    assert (counts @ np.ones((2**10, 4), dtype=np.float32)).shape == (3, 4)


def test_murmurhash_is_scikit_learns():
    rng = np.random.default_rng(0)
    keys = [bytes(rng.integers(0, 256, length, dtype=np.uint8)) for length in range(40) for _ in range(5)]
    expected = [sklearn_murmurhash(key, seed=0) for key in keys]
    np.testing.assert_array_equal(murmurhash3_32(keys), expected)


def test_tfidf_products_and_rows_are_scipys_to_the_bit():
    counts = NgramHasher("char_wb", (2, 5), 2**12).transform(TEXTS)
    idf = np.random.default_rng(1).uniform(1, 6, 2**12).astype(np.float32)
    transformer = TfidfTransformer(sublinear_tf=True)
    transformer.idf_ = idf.astype(np.float64)
    reference = transformer.transform(counts.to_scipy())
    ours = counts.tfidf(idf)
    np.testing.assert_array_equal(ours.toarray(), reference.toarray())
    coef = np.random.default_rng(2).normal(size=(22, 2**12)).astype(np.float32)
    np.testing.assert_array_equal(ours @ coef.T, np.asarray(reference @ coef.T))
    rows = np.array([4, 0, 8])
    np.testing.assert_array_equal(ours[rows].toarray(), reference[rows].toarray())
    mask = np.arange(len(TEXTS)) % 2 == 0
    np.testing.assert_array_equal(ours[mask].toarray(), reference[mask].toarray())


def test_links_are_scipys_to_the_bit():
    z = np.random.default_rng(3).normal(0, 6, (500, 22))
    z[0, :3] = [-1e4, 1e4, 720.0]  # a label never seen in training has logit -1e4
    np.testing.assert_array_equal(_expit(z), expit(z))
    np.testing.assert_array_equal(_softmax(z[:, :3]), softmax(z[:, :3], axis=1))
