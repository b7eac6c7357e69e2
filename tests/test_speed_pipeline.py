"""The batched feature pipeline: texts grouped by token count, images decoded ahead by a pool while the text
encoder runs in its own thread; whatever the grouping, every meme gets its own features, in input order."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from memecat.data.meme import Meme
from memecat.encoders.cache import FeatureCache
from memecat.errors import DataError
from memecat.features import FeatureExtractor, token_batches


def test_token_batches_group_by_length_within_the_budget():
    lengths = [5, 40, 7, 7, 120, 6, 39, 5, 8]
    batches = token_batches(lengths, max_tokens=48, max_rows=4)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= 48
        assert len(batch) <= 4
    assert [4] in batches  # longer than the budget: alone
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat)
    assert token_batches([], 48, 4) == []


@pytest.fixture
def memes(tmp_path) -> list[Meme]:
    rng = np.random.default_rng(0)
    out = []
    for index in range(11):
        path = tmp_path / f"{index}.jpg"
        Image.fromarray(rng.integers(0, 256, (60 + 7 * index, 90, 3), dtype=np.uint8)).save(path)
        words = " ".join(["word"] * (1 + 9 * (index % 4)))  # lengths that force several text batches
        out.append(Meme(str(index), f"{words} {index}", image=path))
    out.append(Meme("text only", "no picture at all"))
    out.append(Meme("image only", "", image=out[0].image))  # the same image as meme 0
    out.append(Meme("repeat", out[1].text, image=out[2].image))
    return out


def test_bulk_features_are_each_memes_own_in_input_order(memes, tmp_path, monkeypatch):
    monkeypatch.setattr("memecat.features.TEXT_BATCH_TOKENS", 40)
    bulk = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0", FeatureCache(tmp_path / "bulk"))
    together = bulk.encode_arrays(memes)
    alone = bulk.with_cache(FeatureCache(tmp_path / "alone"))
    for row, meme in enumerate(memes):
        single = alone.encode_arrays([meme])
        for key in ("image_pooled", "text_pooled", "image_present"):
            np.testing.assert_allclose(together[key][row], single[key][0], atol=1e-5, rtol=1e-4)
        length = int(single["text_mask"][0].sum())
        assert int(together["text_mask"][row].sum()) == length
        np.testing.assert_array_equal(together["input_ids"][row, :length], single["input_ids"][0, :length])
        np.testing.assert_allclose(together["text_tokens"][row, :length], single["text_tokens"][0, :length],
                                   atol=2e-3, rtol=2e-3)
    assert together["image_present"].tolist() == [True] * 11 + [False, True, True]
    assert not together["image_pooled"][11].any() and not together["image_grid"][11].any()
    warm = bulk.encode_arrays(memes)  # every feature from the cache now: the same values
    for key in together:
        np.testing.assert_array_equal(warm[key], together[key])


def test_pooled_only_reads_and_equals_the_full_path(memes, tmp_path):
    features = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0", FeatureCache(tmp_path / "c"))
    full = features.encode_arrays(memes)
    pooled = features.encode_arrays(memes, pooled_only=True)
    assert set(pooled) == {"image_pooled", "image_present", "text_pooled"}
    for key in pooled:
        np.testing.assert_array_equal(pooled[key], full[key])


def test_a_bad_image_anywhere_stops_the_batch_with_its_name(memes, tmp_path):
    features = FeatureExtractor.from_names("minilm-l6", "efficientnet-lite0", FeatureCache(tmp_path / "c"))
    broken = [*memes[:7], Meme("bad", "still has text", image=b"GIF89a-broken"), *memes[7:]]
    with pytest.raises(DataError, match=r"\[id bad\]: not a readable image"):
        features.encode_arrays(broken)
    assert features.encode_arrays(memes[:2])["image_present"].tolist() == [True, True]  # still works
