"""The linear probe's explanation: which words of a meme's text pushed each label up."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction import FeatureHasher


def word_pushes(probe, text: str, tfidf_rows: dict, analyzers: dict, top_k: int) -> dict[str, list[dict]]:
    """Per label, the words of `text` that pushed it up most: a word's push is the sum, over the n-gram views, of
    TF-IDF value x coefficient of the n-grams it is part of; an n-gram found in several words is shared evenly."""
    first_spelling: dict[str, str] = {}  # both analyzers lowercase: "LIE" and "lie" are one word
    for word in text.split():
        first_spelling.setdefault(word.lower(), word)
    words = list(first_spelling.values())
    word_push = np.zeros((probe.task.num_labels, len(words)), dtype=np.float32)
    # HashingVectorizer hashes each n-gram with this FeatureHasher, so its column can be recovered.
    hasher = FeatureHasher(probe.config.ngram_features, input_type="string", alternate_sign=False)
    for view, row in tfidf_rows.items():
        ngrams, share = ngrams_of_words(view, analyzers[view], text, words)  # share [W, n-grams]: word in n-gram
        if not ngrams:
            continue
        columns = hasher.transform([[g] for g in ngrams]).indices
        push = probe.weights[view][0][:, columns] * row.toarray()[0, columns]  # [L, n-grams]
        word_push += push @ (share / share.sum(0).clip(min=1)).T
    out = {}
    for j, label in enumerate(probe.task.labels):
        order = [k for k in np.argsort(-word_push[j], kind="stable") if word_push[j, k] > 0][:top_k]
        out[label] = [{"token": words[k], "weight": round(float(word_push[j, k]), 4)} for k in order]
    return out


def ngrams_of_words(view: str, analyzer, text: str, words: list[str]) -> tuple[list[str], np.ndarray]:
    """The view's n-grams of `text` and which of `words` each contains. char_wb n-grams never cross words;
    a word pair belongs to both its words."""
    if view == "char-ngrams":
        grams_of = [set(analyzer(w)) for w in words]
        ngrams = sorted(set().union(*grams_of))
        return ngrams, np.array([[g in grams for g in ngrams] for grams in grams_of], dtype=np.float32)
    ngrams = sorted(set(analyzer(text)))
    tokens_of = [set(analyzer(w)) for w in words]  # "lie!" -> {"lie"}
    return ngrams, np.array([[any(t in tokens for t in g.split()) for g in ngrams] for tokens in tokens_of],
                            dtype=np.float32)
