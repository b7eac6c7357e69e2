"""The linear probe's explanation: which words of a meme's text pushed each label up.

A word's push is the sum, over the n-gram views, of TF-IDF value x coefficient of the n-grams it is part of;
an n-gram found in several words is shared evenly. Computed with arrays over (word, n-gram) and (word, token)
pairs, whose number follows the text's length: many words sharing one token ("ab-1 ab-2 ab-3 ...") never
multiply into words x n-grams, so the longest text a service accepts is explained in milliseconds.
"""

from __future__ import annotations

import numpy as np

from memecat.models.ngrams import hashed_columns


def word_pushes(probe, text: str, tfidf_rows: dict, analyzers: dict, top_k: int) -> dict[str, list[dict]]:
    """Per label, the words of `text` that pushed it up most, at most `top_k`, each with its push."""
    first_spelling: dict[str, str] = {}  # both analyzers lowercase: "LIE" and "lie" are one word
    for word in text.split():
        first_spelling.setdefault(word.lower(), word)
    words = list(first_spelling.values())
    word_push = np.zeros((len(words), probe.task.num_labels), dtype=np.float64)
    for view, row in tfidf_rows.items():
        analyzer = analyzers[view]
        ngrams = _char_ngrams(analyzer, words) if view == "char-ngrams" else sorted(set(analyzer(text)))
        if not ngrams:
            continue
        columns = hashed_columns(ngrams, probe.config.ngram_features)
        push = (probe.weights[view][0][:, columns] * row.toarray()[0, columns]).T  # [n-grams, L]
        if view == "char-ngrams":
            word_push += _char_view(analyzer, words, ngrams, push)
        else:
            word_push += _word_view(analyzer, words, ngrams, push)
    out = {}
    for j, label in enumerate(probe.task.labels):
        order = [k for k in np.argsort(-word_push[:, j], kind="stable") if word_push[k, j] > 0][:top_k]
        out[label] = [{"token": words[k], "weight": round(float(word_push[k, j]), 4)} for k in order]
    return out


def _char_ngrams(analyzer, words: list[str]) -> list[str]:
    return list(dict.fromkeys(gram for word in words for gram in analyzer(word)))  # char_wb never crosses words


def _char_view(analyzer, words: list[str], ngrams: list[str], push: np.ndarray) -> np.ndarray:
    """[W, L]: each word's share of the pushes of the character n-grams inside it."""
    index = {gram: g for g, gram in enumerate(ngrams)}
    pairs = [(w, index[gram]) for w, word in enumerate(words) for gram in dict.fromkeys(analyzer(word))]
    word_of, gram_of = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    sharers = np.bincount(gram_of, minlength=len(ngrams))
    return _scatter(len(words), word_of, push[gram_of] / sharers[gram_of, None])


def _word_view(analyzer, words: list[str], ngrams: list[str], push: np.ndarray) -> np.ndarray:
    """[W, L]: each word's share of the pushes of the word n-grams (tokens and token pairs) it holds a token of.

    With W(t) the words holding token t, an n-gram {a, b} touches W(a) | W(b): |W(a)| + |W(b)| - |W(a) & W(b)|
    words. Its share goes to each word of W(a) and of W(b), then comes back once from each of W(a) & W(b),
    the only set that needs listing word by word, and it is small (the words holding both tokens)."""
    tokens_of = [{t for t in analyzer(word) if " " not in t} for word in words]  # "lie!" -> {"lie"}
    words_of: dict[str, list[int]] = {}
    for w, tokens in enumerate(tokens_of):
        for token in tokens:
            words_of.setdefault(token, []).append(w)
    token_index = {token: t for t, token in enumerate(words_of)}
    gram_tokens = [[t for t in dict.fromkeys(gram.split()) if t in words_of] for gram in ngrams]
    both: list[tuple[int, int]] = []  # (n-gram, word) for words holding every token of a two-token n-gram
    touched = np.zeros(len(ngrams), dtype=np.int64)
    for g, tokens in enumerate(gram_tokens):
        touched[g] = sum(len(words_of[t]) for t in tokens)
        if len(tokens) == 2:
            small, large = sorted(tokens, key=lambda t: len(words_of[t]))
            common = [w for w in words_of[small] if large in tokens_of[w]]
            touched[g] -= len(common)
            both.extend((g, w) for w in common)
        elif len(tokens) > 2:
            raise ValueError(f"word n-grams of {len(tokens)} tokens are not supported")
    share = push / np.maximum(touched, 1)[:, None]  # [n-grams, L]: what each touched word gets
    per_token = np.zeros((len(token_index), push.shape[1]))
    pairs = [(g, token_index[t]) for g, tokens in enumerate(gram_tokens) for t in tokens]
    if pairs:
        gram_of, token_of = np.array(pairs, dtype=np.int64).T
        np.add.at(per_token, token_of, share[gram_of])
    holder_pairs = [(w, token_index[t]) for t, ws in words_of.items() for w in ws]
    out = np.zeros((len(words), push.shape[1]))
    if holder_pairs:
        word_of, token_of = np.array(holder_pairs, dtype=np.int64).T
        out += _scatter(len(words), word_of, per_token[token_of])
    if both:
        gram_of, word_of = np.array(both, dtype=np.int64).T
        out -= _scatter(len(words), word_of, share[gram_of])
    return out


def _scatter(rows: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """out[index[i]] += values[i], for [rows, L]."""
    out = np.zeros((rows, values.shape[1]))
    np.add.at(out, index, values)
    return out
