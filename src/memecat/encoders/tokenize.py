"""Tokenization with the `tokenizers` package alone: the fast tokenizer transformers wraps, without transformers.

Texts are tokenized unpadded first, so a caller can group them by length before padding each batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

Side = Literal["right", "left"]


@dataclass
class TextTokenizer:
    """Special tokens added and truncated at `max_length`, as transformers' `tokenizer(texts, truncation=True,
    max_length=...)`; `pad` pads to the longest row, or to max_length when `fixed_length`."""

    tokenizer: Tokenizer
    max_length: int
    pad_token_id: int
    fixed_length: bool = False
    padding_side: Side = "right"
    truncation_side: Side = "right"

    def __post_init__(self):
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first", direction=self.truncation_side)

    @classmethod
    def from_json(cls, text: str, **settings) -> TextTokenizer:
        return cls(Tokenizer.from_str(text), **settings)

    def settings(self) -> dict:
        """Everything besides the tokenizer's JSON that `from_json` needs."""
        return {"max_length": self.max_length, "pad_token_id": self.pad_token_id, "fixed_length": self.fixed_length,
                "padding_side": self.padding_side, "truncation_side": self.truncation_side}

    def to_json(self) -> str:
        # The padding and truncation settings are ours to apply; the stored JSON holds neither.
        data = json.loads(self.tokenizer.to_str())
        data["padding"] = data["truncation"] = None
        return json.dumps(data)

    def ids(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's token ids (int64), special tokens included, unpadded."""
        return [np.asarray(encoding.ids, dtype=np.int64) for encoding in self.tokenizer.encode_batch(list(texts))]

    def pad(self, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64 [B, T]: right- or left-padded with pad_token_id."""
        length = self.max_length if self.fixed_length else max((len(row) for row in rows), default=0)
        ids = np.full((len(rows), length), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for index, row in enumerate(rows):
            at = slice(0, len(row)) if self.padding_side == "right" else slice(length - len(row), length)
            ids[index, at] = row
            mask[index, at] = 1
        return ids, mask

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.pad(self.ids(texts))
