"""Dataset readers. Every layout becomes a list of Meme; every problem names file, record and cause.

Layouts (parsed by `memecat.data.records`):
- a JSON list (SemEval-2021 Task 6 ships `*.txt` files that hold one), `.json`; or an object holding the
  list under "memes" or "data", or mapping id -> record
- JSON Lines (HarMeme `train.jsonl`, ...), `.jsonl`
- CSV with columns id, text, image and optional labels (`;`-separated or a JSON list), `.csv`

Images are resolved relative to the dataset file, then under an `images/` folder beside it (HarMeme).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memecat.data.meme import Meme
from memecat.data.records import read_records
from memecat.errors import DataError


def _meme_list(data: dict) -> Any:
    """The records of a JSON object: {"memes": [...]}, {"data": [...]} or {id: record}."""
    return data.get("memes", data.get("data", list(data.values())))


def resolve_image(base: Path, name: str) -> Path:
    direct = base / name
    if direct.exists():
        return direct
    nested = base / "images" / name
    return nested if nested.exists() else direct


def _to_meme(path: Path, where: str, row: Any) -> Meme:
    if not isinstance(row, dict):
        raise DataError(path, f"{where} is not a JSON object")
    meme_id = row.get("id")
    if meme_id is None or str(meme_id).strip() == "":
        raise DataError(path, f"{where} has no 'id' field")
    meme_id = str(meme_id)
    if "text" not in row or row["text"] is None:
        raise DataError(path, "record has no 'text' field", meme_id)
    text = row["text"]
    if not isinstance(text, str):
        raise DataError(path, f"'text' must be a string, got {type(text).__name__}", meme_id)
    image = row.get("image") or row.get("img")
    image_path = resolve_image(path.parent, str(image)) if image else None
    if not text.strip() and image_path is None:  # an image-only meme is fine; a meme of nothing is not
        raise DataError(path, "meme has neither text nor image", meme_id)
    labels = row.get("labels")
    if labels is not None:
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DataError(path, "'labels' must be a list of strings", meme_id)
        labels = tuple(labels)
    return Meme(id=meme_id, text=text, image=image_path, labels=labels)


def scan_dataset(path: str | Path) -> tuple[list[Meme], list[DataError]]:
    """Read every record, collecting all problems instead of stopping at the first."""
    path = Path(path)
    if not path.exists():
        return [], [DataError(path, "dataset file not found")]
    if path.is_dir():
        return [], [DataError(path, "is a folder; name the dataset file (.json, .jsonl, .csv or .txt)")]
    try:
        records = read_records(path, required_columns=("id", "text"), from_object=_meme_list,
                               expected="a JSON list of meme records")
    except DataError as exc:
        return [], [exc]
    memes: list[Meme] = []
    problems: list[DataError] = []
    seen: set[str] = set()
    for where, row in records:
        try:
            meme = _to_meme(path, where, row)
        except DataError as exc:
            problems.append(exc)
            continue
        if meme.id in seen:
            problems.append(DataError(path, "duplicate id", meme.id))
            continue
        seen.add(meme.id)
        memes.append(meme)
    return memes, problems


def read_dataset(path: str | Path) -> list[Meme]:
    """Read a dataset file, raising the first problem as a DataError."""
    memes, problems = scan_dataset(path)
    if problems:
        raise problems[0]
    if not memes:
        raise DataError(path, "dataset holds no memes")
    return memes
