"""One batch of entries in, one output record per entry out: the step both engines run.

A record is {"id", "labels"[, "scores", "explanation"], "model"} for a predicted meme, {"id", "error", "model"}
for a meme that could not be used, and {"id": None, "where", "error", "model"} for a record without a usable
id. Nothing a single meme holds stops the batch: its image file is checked before the model sees it, and a
batch the model refuses is split in halves until the memes it refuses are alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from memecat.data.images import check_file
from memecat.data.meme import Meme
from memecat.data.readers import Entry
from memecat.errors import DataError, MemecatError

if TYPE_CHECKING:
    from memecat.models.base import MemeModel

# Bytes an image file may hold: far beyond any meme (the shared datasets' largest is a few MB), and a bound on
# what a batch holds in memory whatever a dataset names.
MAX_IMAGE_BYTES = 32 * 2**20
SEQ = "_seq"  # an entry's position in its source: orders the output, never written to it


class Pending(NamedTuple):
    """An entry waiting to be predicted, with its position in the source."""

    seq: int
    entry: Entry


class Reported(DataError):
    """A problem already rendered to its one line (it crossed a process boundary as text)."""

    def __init__(self, message: str):
        Exception.__init__(self, message)
        self.path = self.record_id = None
        self.problem = message


class ModelFailure(MemecatError):
    """The model keeps failing on memes that hold nothing wrong: a problem with the model or the machine."""


def check_image(meme: Meme, max_bytes: int = MAX_IMAGE_BYTES) -> None:
    """Refuse, before any read, an image that is not a regular file of a sane size (see `check_file`)."""
    image = meme.image
    if isinstance(image, bytes) and len(image) > max_bytes:
        raise DataError(meme.image_name, f"image is {len(image):,} bytes, over the {max_bytes:,}-byte cap", meme.id)
    if isinstance(image, Path):
        try:
            check_file(image, str(image), max_bytes)
        except DataError as exc:
            raise DataError(exc.path, exc.problem, meme.id) from None


def error_record(entry: Entry, message: str, model: str) -> dict:
    if entry.id is None:
        return {"id": None, "where": entry.where, "error": message, "model": model}
    return {"id": entry.id, "error": message, "model": model}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Predictor:
    """Turns batches of pending entries into output records (each with its `_seq`), for one model.

    A meme the model refuses with DataError is that meme's error record. Any other exception is isolated the
    same way, but if `patience` memes in a row fail so, the model rather than the data is at fault and the job
    stops with ModelFailure; a MemecatError that is not about data (a missing encoder, ...) stops it at once.
    """

    def __init__(self, model: MemeModel, model_id: str, *, explain: bool = False, patience: int = 128,
                 max_image_bytes: int = MAX_IMAGE_BYTES):
        self.model = model
        self.model_id = model_id
        self.explain = explain
        self.patience = patience
        self.max_image_bytes = max_image_bytes
        self._unexpected_in_a_row = 0

    def __call__(self, batch: Sequence[Pending]) -> list[dict]:
        records: dict[int, dict] = {}
        ready: list[Pending] = []
        for item in batch:
            entry = item.entry
            if entry.problem is not None:
                records[item.seq] = error_record(entry, str(entry.problem), self.model_id)
                continue
            try:
                check_image(entry.meme, self.max_image_bytes)
            except DataError as exc:
                records[item.seq] = error_record(entry, str(exc), self.model_id)
                continue
            ready.append(item)
        for item, record in zip(ready, self._predict(ready)):
            records[item.seq] = record
        return [{SEQ: item.seq, **records[item.seq]} for item in batch]

    def _predict(self, items: list[Pending]) -> list[dict]:
        if not items:
            return []
        try:
            predicted = self.model.predict([item.entry.meme for item in items], explain=self.explain)
        except DataError as exc:
            if len(items) == 1:
                return [error_record(items[0].entry, str(exc), self.model_id)]
        except MemecatError:
            raise
        except Exception as exc:  # noqa: BLE001 - one meme's oddity must not stop a million-meme job
            if len(items) == 1:
                return [self._unexpected(items[0].entry, exc)]
        else:
            if [r.get("id") for r in predicted] != [item.entry.meme.id for item in items]:
                raise ModelFailure(f"the model answered {len(predicted)} records for {len(items)} memes, or "
                                   f"in another order")
            self._unexpected_in_a_row = 0
            return [{**record, "model": self.model_id} for record in predicted]
        # Some meme in the batch is bad: halve the batch until the bad ones are alone (log2(batch) rounds).
        middle = len(items) // 2
        return self._predict(items[:middle]) + self._predict(items[middle:])

    def _unexpected(self, entry: Entry, exc: Exception) -> dict:
        self._unexpected_in_a_row += 1
        reason = f"{type(exc).__name__}: {one_line(exc)}"
        if self._unexpected_in_a_row >= self.patience:
            raise ModelFailure(f"the last {self._unexpected_in_a_row} memes all failed inside the model "
                               f"({reason}); stopping, as the model or the machine is at fault, not the data")
        name = entry.meme.image_name if entry.meme is not None and entry.meme.has_image else None
        return error_record(entry, f"{name or '<input>'} [id {entry.id}]: model failed ({reason})", self.model_id)
