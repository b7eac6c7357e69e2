"""Hashed character and word n-grams in numpy: scikit-learn's HashingVectorizer (lowercased, signed 32-bit
MurmurHash3 of each n-gram's UTF-8, no alternate sign, no norm) and TF-IDF transform, column for column and
value for value, without importing scikit-learn or SciPy, which take longer to import than a prediction takes.

Models fitted with scikit-learn's vectorizer read the same columns (tests/test_speed_ngrams.py holds the two
side by side).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")

Analyzer = Callable[[str], list[str]]


def char_wb_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams inside words, each word padded with a space on both sides (analyzer="char_wb")."""
    ngrams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        word = f" {word} "
        length = len(word)
        for n in range(min_n, max_n + 1):
            if length <= n:  # a word no longer than n counts once, as itself, and ends the word's n-grams
                ngrams.append(word)
                break
            ngrams.extend([word[i : i + n] for i in range(length - n + 1)])
    return ngrams


def word_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Tokens of two or more word characters and their runs of min_n..max_n, space-joined (analyzer="word")."""
    tokens = _TOKEN.findall(text.lower())
    grams = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n + 1, len(tokens) + 1)):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def murmurhash3_32(keys: Sequence[bytes]) -> np.ndarray:
    """Signed MurmurHash3_x86_32 (seed 0) of each key, vectorised over the keys of each length."""
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    out = np.empty(len(keys), dtype=np.uint32)
    if not len(keys):
        return out.view(np.int32)
    order = np.argsort(lengths, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(lengths[order]) != 0])
    for start, stop in zip(starts, np.r_[starts[1:], len(keys)]):
        rows = order[start:stop]
        length = int(lengths[rows[0]])
        data = np.frombuffer(b"".join([keys[i] for i in rows]), dtype=np.uint8).reshape(len(rows), length)
        h = np.zeros(len(rows), dtype=np.uint32)
        blocks = length // 4
        words = np.ascontiguousarray(data[:, : blocks * 4]).view("<u4")
        for b in range(blocks):
            k = _rotl(words[:, b] * _C1, 15) * _C2
            h = _rotl(h ^ k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
        if length % 4:
            k = np.zeros(len(rows), dtype=np.uint32)
            for shift, column in enumerate(range(blocks * 4, length)):
                k ^= data[:, column].astype(np.uint32) << np.uint32(8 * shift)
            h ^= _rotl(k * _C1, 15) * _C2
        h ^= np.uint32(length)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
        out[rows] = h
    return out.view(np.int32)


def hashed_columns(ngrams: Sequence[str], n_features: int) -> np.ndarray:
    """Each n-gram's column, as FeatureHasher picks it: |hash| mod n_features (-2^31 has its own rule)."""
    h = murmurhash3_32([gram.encode("utf-8") for gram in ngrams]).astype(np.int64)
    columns = np.abs(h) % n_features
    columns[h == -(2**31)] = (2**31 - 1 - (n_features - 1)) % n_features
    return columns


@dataclass
class SparseRows:
    """Rows of a sparse float64 matrix in CSR form (sorted, distinct columns per row): what the n-gram views
    hold, with the few operations the probe needs."""

    indptr: np.ndarray  # int64 [N + 1]
    indices: np.ndarray  # int64 [nnz]
    data: np.ndarray  # float64 [nnz]
    n_features: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, self.n_features

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, rows) -> SparseRows:
        """Rows by index, index array or boolean mask."""
        rows = np.arange(len(self))[rows]
        rows = np.atleast_1d(rows)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)]) if len(rows) else np.zeros(0, int)
        indptr = np.r_[0, np.cumsum(stops - starts)].astype(np.int64)
        return SparseRows(indptr, self.indices[take], self.data[take], self.n_features)

    def _row_sums(self, values: np.ndarray) -> np.ndarray:
        """Per row, the sum of its entries' `values` (1-D or [nnz, k]), added left to right from 0.0 as SciPy's
        and scikit-learn's loops add them, so the results are theirs to the last bit."""
        lengths = np.diff(self.indptr)
        out = np.zeros((len(self), *values.shape[1:]), dtype=np.float64)
        by_length = np.argsort(-lengths, kind="stable")
        longest = int(lengths.max()) if len(lengths) else 0
        # Rows still holding a j-th entry are a prefix of the rows sorted by length: add those entries.
        still = np.searchsorted(-lengths[by_length], -np.arange(longest), side="left")
        for j in range(longest):
            rows = by_length[: still[j]]
            out[rows] += values[self.indptr[rows] + j]
        return out

    def tfidf(self, idf: np.ndarray) -> SparseRows:
        """TfidfTransformer(sublinear_tf=True) with this idf: (1 + log tf) * idf, each row scaled to unit norm."""
        data = (np.log(self.data) + 1.0) * idf.astype(np.float64)[self.indices]
        norms = np.sqrt(self._row_sums(data * data))
        norms[norms == 0] = 1.0
        return SparseRows(self.indptr, self.indices, data / np.repeat(norms, np.diff(self.indptr)), self.n_features)

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        """self @ dense [n_features, k] in float64, as SciPy computes it."""
        return self._row_sums(self.data[:, None] * dense[self.indices].astype(np.float64))

    def toarray(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=np.float64)
        out[np.repeat(np.arange(len(self)), np.diff(self.indptr)), self.indices] = self.data
        return out

    def to_scipy(self):
        """As a SciPy CSR matrix, for scikit-learn's estimators."""
        from scipy import sparse

        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


@dataclass(frozen=True)
class NgramHasher:
    """HashingVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=n_features,
    alternate_sign=False, norm=None) on lowercased text."""

    analyzer: str  # "char_wb" or "word"
    ngram_range: tuple[int, int]
    n_features: int

    def build_analyzer(self) -> Analyzer:
        grams = char_wb_ngrams if self.analyzer == "char_wb" else word_ngrams
        low, high = self.ngram_range
        return lambda text: grams(text, low, high)

    def transform(self, texts: Sequence[str]) -> SparseRows:
        """Counts of each text's hashed n-grams: [len(texts), n_features]."""
        analyze = self.build_analyzer()
        per_text = [analyze(text) for text in texts]
        counts = np.array([len(grams) for grams in per_text], dtype=np.int64)
        flat = list(chain.from_iterable(per_text))
        distinct = list(dict.fromkeys(flat))  # texts share most n-grams: hash each once
        column_of = dict(zip(distinct, hashed_columns(distinct, self.n_features).tolist()))
        columns = np.fromiter(map(column_of.__getitem__, flat), dtype=np.int64, count=len(flat))
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
        keys, repeats = np.unique(rows * self.n_features + columns, return_counts=True)  # sorted, summed
        per_row = np.bincount(keys // self.n_features, minlength=len(texts))
        indptr = np.r_[0, np.cumsum(per_row)].astype(np.int64)
        return SparseRows(indptr, keys % self.n_features, repeats.astype(np.float64), self.n_features)
