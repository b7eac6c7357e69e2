"""Prediction inputs and outputs: memes from the command line, a dataset file or a folder of images;
predictions in batches that survive unreadable images; records written atomically as JSON, JSONL or CSV,
and read back (for scoring) through the same record parser as datasets.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from memecat.data.meme import Meme
from memecat.data.readers import read_dataset
from memecat.data.records import labels_from_cell, read_records
from memecat.errors import DataError, MemecatError
from memecat.files import atomic_open

if TYPE_CHECKING:  # torch stays unimported until a model is actually needed
    from memecat.models.base import MemeModel

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
SIDECAR_SUFFIXES = (".json", ".jsonl", ".csv")
OUTPUT_FORMATS = ("json", "jsonl", "csv")


# --- inputs ---------------------------------------------------------------------------------------
def collect_inputs(*, image: str | Path | None = None, text: str | None = None,
                   input_path: str | Path | None = None) -> list[Meme]:
    """Memes to predict: one from `image` and/or `text`, or all of a dataset file or an image folder.

    One meme needs text, an image or both: `text` alone is a text-only meme, `image` alone (or with empty
    text) an image-only one.
    """
    if input_path is not None:
        if image is not None or text is not None:
            raise MemecatError("give either an input file/folder or --image/--text, not both")
        path = Path(input_path)
        if path.is_dir():
            return _folder_memes(path)
        return read_dataset(path)
    text = _plain_text(text)
    if image is None:
        if text is None:
            raise MemecatError("name an input file/folder, or give --text TEXT and/or --image FILE")
        if not text:
            raise MemecatError("--text is empty and no --image is given: a meme needs text, an image or both")
        return [Meme(id="meme", text=text, image=None)]
    image = Path(image)
    if not image.is_file():
        raise DataError(image, "image file not found")
    return [Meme(id=image.stem, text=text or "", image=image)]


def _plain_text(text: str | None) -> str | None:
    """Whitespace-only text is no text: an image-only meme's text is ""."""
    return text if text is None or text.strip() else ""


def _find_sidecar(folder: Path) -> Path:
    for suffix in SIDECAR_SUFFIXES:
        named = folder / f"texts{suffix}"
        if named.is_file():
            return named
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SIDECAR_SUFFIXES)
    if not candidates:
        raise DataError(folder, "no text file in the folder; add texts.json (image name -> text), "
                                "texts.jsonl or texts.csv (image, text)")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise DataError(folder, f"several text files ({names}); name the one to use texts.json/.jsonl/.csv")
    return candidates[0]


def _named_texts(data: dict) -> list[dict]:
    """A sidecar object {image name: text} as the records a list sidecar holds."""
    return [{"image": name, "text": text} for name, text in data.items()]


def _sidecar_records(path: Path) -> list[tuple[str, Any]]:
    """(image name, text) pairs in file order; the text (None when the record has none) is checked later."""
    records = read_records(path, required_columns=("image", "text"), from_object=_named_texts,
                           expected="a JSON object {image name: text} or a list of {image, text} records")
    pairs = []
    for where, row in records:
        if not isinstance(row, dict) or not row.get("image"):
            raise DataError(path, f"{where} has no 'image' field")
        pairs.append((str(row["image"]), row.get("text")))
    return pairs


def _folder_memes(folder: Path) -> list[Meme]:
    """The sidecar's images in its order, then the folder's other images (sorted by name) as image-only memes.

    An image the sidecar gives no or empty text is image-only too; a named image that is not there, text that
    is not a string, or two images with one id are errors.
    """
    sidecar = _find_sidecar(folder)
    memes: list[Meme] = []
    named: set[Path] = set()  # resolved, so `./a.png` in the sidecar is a.png
    ids: set[str] = set()

    def add(image: Path, text: str) -> None:
        if image.stem in ids:
            raise DataError(sidecar, f"two images share the id {image.stem!r} (file name without suffix)")
        named.add(image.resolve())
        ids.add(image.stem)
        memes.append(Meme(id=image.stem, text=text, image=image))

    for name, text in _sidecar_records(sidecar):
        image = folder / name
        if not image.is_file():
            raise DataError(sidecar, f"image {name!r} not found in {folder}")
        if text is not None and not isinstance(text, str):
            raise DataError(sidecar, f"image {name!r}: text must be a string, got {type(text).__name__}")
        add(image, _plain_text(text) or "")
    # Hidden files are skipped: macOS leaves `._name.png` companions that are not images.
    for image in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                        and not p.name.startswith(".") and p.resolve() not in named):
        add(image, "")
    if not memes:
        raise DataError(folder, f"no images to predict ({sidecar.name} names none and the folder holds none)")
    return memes


# --- prediction -----------------------------------------------------------------------------------
def predict_safely(model: MemeModel, memes: list[Meme], batch_size: int = 64, explain: bool = False,
                   progress: bool = True) -> tuple[list[dict], int]:
    """Records in input order; a meme the model cannot read becomes {"id", "error"} instead of stopping."""
    records: list[dict] = []
    failures = 0
    with tqdm(total=len(memes), unit="meme", desc="predict", disable=not progress) as bar:
        for start in range(0, len(memes), batch_size):
            batch = memes[start:start + batch_size]
            try:
                records.extend(model.predict(batch, explain=explain))
            except DataError:
                # Some meme in the batch is bad: redo it one by one to find and skip just that one.
                for meme in batch:
                    try:
                        records.extend(model.predict([meme], explain=explain))
                    except DataError as exc:
                        records.append({"id": meme.id, "error": str(exc)})
                        failures += 1
            bar.update(len(batch))
    return records, failures


# --- outputs --------------------------------------------------------------------------------------
def output_format(path: str | Path, fmt: str | None) -> str:
    """The format predictions will be written in; a clear error for a path that cannot take them.
    Called before predicting too, so a bad --out costs no work."""
    if str(path) != "-" and Path(path).is_dir():
        raise MemecatError(f"{path}: is a folder; give a file name for the predictions")
    if fmt is None:
        if str(path) == "-":
            return "json"
        fmt = Path(path).suffix.lower().lstrip(".")
        if fmt not in OUTPUT_FORMATS:
            raise MemecatError(f"{path}: cannot tell the output format from the suffix; "
                               f"use .json, .jsonl or .csv, or name the format")
    if fmt not in OUTPUT_FORMATS:
        raise MemecatError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    return fmt


def _labels_cell(labels: list[str]) -> str:
    """`;`-joined when that reads back as the same labels, else a JSON list (an empty list, a label holding
    `;` or starting with `[`, ...)."""
    joined = ";".join(labels)
    with suppress(ValueError):
        if labels_from_cell(joined) == list(labels):
            return joined
    return json.dumps(list(labels), ensure_ascii=False)


def _csv_text(records: list[dict]) -> str:
    score_columns: dict[str, None] = {}  # ordered set: score labels in first-seen order
    for record in records:
        score_columns.update(dict.fromkeys(record.get("scores", {})))
    out = io.StringIO()
    # CRLF row ends (RFC 4180, the csv default): the writer then quotes every field holding a \r or \n, which
    # a reader would otherwise take for the end of the row.
    writer = csv.writer(out)
    writer.writerow(["id", "labels", "error", *score_columns])
    for record in records:
        scores = record.get("scores", {})
        labels = _labels_cell(record["labels"]) if "labels" in record else ""
        writer.writerow([record["id"], labels, record.get("error", ""),
                         *(scores.get(label, "") for label in score_columns)])
    return out.getvalue()


def _render(records: list[dict], fmt: str) -> str:
    if fmt == "csv":
        return _csv_text(records)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def write_predictions(records: Iterable[dict], path: str | Path, fmt: str | None = None) -> None:
    """Write records as json (the organisers' submission list), jsonl or csv; `-` is stdout.

    A regular file is written to a temporary sibling and renamed, so a crash never leaves half a file; a
    symlink's target is what gets replaced. Anything else that exists (/dev/null, a pipe) is written in
    place: renaming onto it would put a plain file where the device was.
    CSV keeps id, labels (`;`-joined, or a JSON list where `;` would not read back), error and one column
    per score; explanations need JSON.
    """
    text = _render(list(records), output_format(path, fmt))
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write(text)
        return
    with atomic_open(path) as f:
        f.write(text)


# --- reading predictions back ---------------------------------------------------------------------
def read_predictions(path: str | Path) -> dict[str, list[str]]:
    """id -> labels from a JSON list, JSONL or CSV of {"id", "labels"} records (the submission format)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "predictions file not found")
    records = read_records(path, required_columns=("id", "labels"),
                           expected='a JSON list of {"id", "labels"} records')
    out: dict[str, list[str]] = {}
    for i, (_, row) in enumerate(records):
        if not isinstance(row, dict) or "id" not in row:
            raise DataError(path, f"record {i} has no 'id'")
        meme_id = str(row["id"])
        labels = row.get("labels")
        if not isinstance(labels, list):
            raise DataError(path, "record has no 'labels' list", meme_id)
        if meme_id in out:
            raise DataError(path, "duplicate id", meme_id)
        out[meme_id] = labels
    return out
