"""Dataset readers. Every layout becomes memes; every problem names file, record and cause.

Layouts (parsed by `memecat.data.records`):
- a JSON list (SemEval-2021 Task 6 ships `*.txt` files that hold one), `.json`; or an object holding the
  list under "memes" or "data", or mapping id -> record
- JSON Lines (HarMeme `train.jsonl`, ...), `.jsonl`
- CSV with columns id, text, image and optional labels (`;`-separated or a JSON list), `.csv`
- Parquet with columns id, text, image (a path, or the image file's bytes) and optional labels, `.parquet`

Images are resolved relative to the dataset file, then under an `images/` folder beside it (HarMeme).

`iter_dataset` streams entries: a meme, or a problem with the one record it concerns, so a caller can go on
past a bad record. `scan_dataset` and `read_dataset` collect them for training and checks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memecat.data.meme import Meme
from memecat.data.records import iter_records
from memecat.errors import DataError

OUTSIDE_HINT = "allow it with --allow-outside-paths"


@dataclass(frozen=True)
class Entry:
    """One input record: a meme, or the problem that keeps it from being one.

    `where` places it in its source ("line 3", "record 2", "row 4", "texts.csv line 2", "a.png") and is unique
    there; `id` is the record's id when it has a usable one (None for a record without one, or a duplicate).
    """

    where: str
    id: str | None
    meme: Meme | None = None
    problem: DataError | None = None

    @property
    def key(self) -> str:
        """What makes the entry itself: its id, or its place for a record that has no usable id. A NUL starts
        a place, so no real id can collide with one."""
        return self.id if self.id is not None else "\0" + self.where


def _meme_list(data: dict) -> Any:
    """The records of a JSON object: {"memes": [...]}, {"data": [...]} or {id: record}."""
    return data.get("memes", data.get("data", list(data.values())))


def resolve_image(base: Path, name: str) -> Path:
    direct = base / name
    if direct.exists():
        return direct
    nested = base / "images" / name
    return nested if nested.exists() else direct


def escapes(name: str) -> bool:
    """Whether an image name from a dataset points outside the dataset's folder: an absolute path, or one whose
    `..` parts climb above it. Judged on the name itself; links inside the folder are its owner's choice."""
    if os.path.isabs(name) or name.startswith("~"):
        return True
    parts = os.path.normpath(name).split(os.sep)
    return parts[0] == ".."


def _record_id(row: dict) -> str | None:
    meme_id = row.get("id")
    if meme_id is None or isinstance(meme_id, (dict, list)) or str(meme_id).strip() == "":
        return None
    return str(meme_id)


def _to_meme(path: Path, where: str, row: Any, confine: bool) -> Meme:
    """The record as a Meme, or a DataError naming the file, the record and the problem."""
    if not isinstance(row, dict):
        raise DataError(path, f"{where} is not a JSON object")
    meme_id = _record_id(row)
    if meme_id is None:
        raise DataError(path, f"{where} has no 'id' field")
    if "text" not in row or row["text"] is None:
        if not _image_field(row):
            raise DataError(path, "record has no 'text' field", meme_id)
        row = {**row, "text": ""}  # an image-only meme may leave its text out
    text = row["text"]
    if isinstance(text, bytes):  # a binary Parquet column
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(path, f"'text' is not UTF-8 ({exc.reason} at byte {exc.start})", meme_id) from None
    if not isinstance(text, str):
        raise DataError(path, f"'text' must be a string, got {type(text).__name__}", meme_id)
    image = _image(path, row, meme_id, confine)
    if not text.strip() and image is None:  # an image-only meme is fine; a meme of nothing is not
        raise DataError(path, "meme has neither text nor image", meme_id)
    labels = row.get("labels")
    if labels is not None:
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DataError(path, "'labels' must be a list of strings", meme_id)
        labels = tuple(labels)
    return Meme(id=meme_id, text=text, image=image, labels=labels)


def _image_field(row: dict) -> Any:
    return row.get("image") or row.get("img")


def _image(path: Path, row: dict, meme_id: str, confine: bool) -> Path | bytes | None:
    """A path relative to the dataset file, or the image's own bytes (Parquet)."""
    image = _image_field(row)
    if not image:
        return None
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if not isinstance(image, str):
        raise DataError(path, f"'image' must be a file name, got {type(image).__name__}", meme_id)
    if "\0" in image:
        raise DataError(path, "image path holds a NUL character", meme_id)
    if confine and escapes(image):
        raise DataError(path, f"image path {image!r} leaves the dataset's folder; {OUTSIDE_HINT}", meme_id)
    return resolve_image(path.parent, image)


def iter_dataset(path: str | Path, *, confine_images: bool = False) -> Iterator[Entry]:
    """Every record of a dataset file as an Entry, streamed, duplicates not yet removed (`unique`).

    A file that cannot be read at all (missing, a folder, a bad header, a malformed JSON document) raises
    DataError; a bad record is an entry with its problem. `confine_images` refuses image paths that leave the
    dataset's folder (absolute, or climbing out with `..`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "dataset file not found")
    if path.is_dir():
        raise DataError(path, "is a folder; name the dataset file (.json, .jsonl, .csv, .parquet or .txt)")
    for where, row, problem in iter_records(path, required_columns=("id", "text"), from_object=_meme_list,
                                            expected="a JSON list of meme records"):
        meme_id = _record_id(row) if isinstance(row, dict) else None
        if problem is not None:
            yield Entry(where, None, problem=problem)
            continue
        try:
            yield Entry(where, meme_id, meme=_to_meme(path, where, row, confine_images))
        except DataError as exc:
            yield Entry(where, meme_id, problem=exc)


def unique(entries: Iterable[Entry], source: str | Path | None) -> Iterator[Entry]:
    """The entries with each id kept once: a later record with an id seen before becomes a problem placed by
    its `where` (ids are held in memory, a few dozen bytes each)."""
    first: dict[str, str] = {}
    for entry in entries:
        if entry.id is None:
            yield entry
        elif entry.id in first:
            yield Entry(entry.where, None, problem=DataError(
                source, f"duplicate id (first at {first[entry.id]})", entry.id))
        else:
            first[entry.id] = entry.where
            yield entry


def scan_dataset(path: str | Path) -> tuple[list[Meme], list[DataError]]:
    """Read every record, collecting all problems instead of stopping at the first."""
    memes: list[Meme] = []
    problems: list[DataError] = []
    try:
        for entry in unique(iter_dataset(path), path):
            if entry.problem is not None:
                problems.append(entry.problem)
            else:
                memes.append(entry.meme)
    except DataError as exc:
        problems.append(exc)
    return memes, problems


def read_dataset(path: str | Path) -> list[Meme]:
    """Read a dataset file, raising the first problem as a DataError."""
    memes, problems = scan_dataset(path)
    if problems:
        raise problems[0]
    if not memes:
        raise DataError(path, "dataset holds no memes")
    return memes
