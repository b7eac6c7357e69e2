"""Prediction files: written whole and atomically as a JSON list (the organisers' format), JSON Lines, CSV or
Parquet, from any iterable of records, so a million records stream through; and read back.

What each format keeps of a record: JSON and CSV the organisers' fields (id, labels, and with --explain scores
and explanation; error and where for records that failed); JSON Lines and Parquet also the `model` id, so a
finished file says which model wrote it.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from memecat.data.records import iter_records, labels_from_cell, read_records
from memecat.errors import DataError, MemecatError
from memecat.files import atomic_open

OUTPUT_FORMATS = ("json", "jsonl", "csv", "parquet")
KEEPS_MODEL = ("jsonl", "parquet")  # formats whose records carry the model id
_PARQUET_ROWS = 4096  # rows per Parquet row group written


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
                               f"use .json, .jsonl, .csv or .parquet, or name the format")
    if fmt not in OUTPUT_FORMATS:
        raise MemecatError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "parquet" and str(path) == "-":
        raise MemecatError("Parquet output needs a file name (--out FILE.parquet), not stdout")
    return fmt


def public(record: dict, fmt: str) -> dict:
    """The record as the format keeps it: the job's bookkeeping (`_seq`) never, the model id where it fits."""
    drop = ("_seq",) if fmt in KEEPS_MODEL else ("_seq", "model")
    return {k: v for k, v in record.items() if k not in drop}


# --- writing --------------------------------------------------------------------------------------
def write_predictions(records: Iterable[dict], path: str | Path, fmt: str | None = None, *,
                      columns: list[str] | None = None) -> None:
    """Write records as json (the organisers' submission list), jsonl, csv or parquet; `-` is stdout.

    A regular file is written to a temporary sibling and renamed, so a crash never leaves half a file; a
    symlink's target is what gets replaced. Anything else that exists (/dev/null, a pipe) is written in
    place: renaming onto it would put a plain file where the device was.
    CSV keeps id, labels (`;`-joined, or a JSON list where `;` would not read back), error and one column
    per score (`columns`, from `csv_columns`, saves holding the records to find them); explanations need
    JSON or Parquet.
    """
    fmt = output_format(path, fmt)
    if fmt == "csv" and columns is None and not isinstance(records, list):
        records = list(records)  # the header names every score column
    with _opened(path, binary=fmt == "parquet") as f:
        if fmt == "parquet":
            _write_parquet(records, f)
        elif fmt == "csv":
            _write_csv(records, f, columns or csv_columns(records))
        elif fmt == "jsonl":
            for record in records:
                f.write(json.dumps(public(record, fmt), ensure_ascii=False) + "\n")
        else:
            _write_json_list((public(r, fmt) for r in records), f)


@contextmanager
def _opened(path: str | Path, binary: bool) -> Iterator[IO[Any]]:
    if str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        with path.open("wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
        return
    with atomic_open(path, "wb" if binary else "w") as f:
        yield f


def _write_json_list(records: Iterable[dict], f: IO[str]) -> None:
    """The same text as json.dumps(list, indent=2), one record at a time."""
    first = True
    for record in records:
        text = json.dumps(record, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        f.write(("[\n  " if first else ",\n  ") + text)
        first = False
    f.write("[]\n" if first else "\n]\n")


def _labels_cell(labels: list[str]) -> str:
    """`;`-joined when that reads back as the same labels, else a JSON list (an empty list, a label holding
    `;` or starting with `[`, ...)."""
    joined = ";".join(labels)
    with suppress(ValueError):
        if labels_from_cell(joined) == list(labels):
            return joined
    return json.dumps(list(labels), ensure_ascii=False)


def csv_columns(records: Iterable[dict]) -> list[str]:
    """id, labels, error, where (only if a record has one), then every score label in first-seen order."""
    scores: dict[str, None] = {}  # ordered set
    where = False
    for record in records:
        scores.update(dict.fromkeys(record.get("scores") or {}))
        where = where or record.get("where") is not None
    return ["id", "labels", "error", *(["where"] if where else []), *scores]


def _write_csv(records: Iterable[dict], f: IO[str], columns: list[str]) -> None:
    # CRLF row ends (RFC 4180, the csv default): the writer then quotes every field holding a \r or \n, which
    # a reader would otherwise take for the end of the row.
    writer = csv.writer(f)
    writer.writerow(columns)
    fixed = 4 if "where" in columns else 3
    for record in records:
        scores = record.get("scores") or {}
        labels = _labels_cell(record["labels"]) if record.get("labels") is not None else ""
        row = [record["id"] if record["id"] is not None else "", labels, record.get("error") or ""]
        if fixed == 4:
            row.append(record.get("where") or "")
        writer.writerow([*row, *(scores.get(label, "") for label in columns[fixed:])])


def parquet_schema(explain: bool, seq: bool = False):
    import pyarrow as pa

    fields = [("_seq", pa.int64())] if seq else []
    fields += [("id", pa.string()), ("labels", pa.list_(pa.string())), ("error", pa.string()),
               ("where", pa.string())]
    if explain:  # explanations differ in shape from model to model: kept as JSON text
        fields += [("scores", pa.map_(pa.string(), pa.float64())), ("explanation", pa.string())]
    return pa.schema([*fields, ("model", pa.string())])


def parquet_table(records: list[dict], explain: bool, seq: bool = False):
    import pyarrow as pa

    schema = parquet_schema(explain, seq)
    rows = []
    for record in records:
        row = {name: record.get(name) for name in schema.names}
        if explain and record.get("explanation") is not None:
            row["explanation"] = json.dumps(record["explanation"], ensure_ascii=False)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def _write_parquet(records: Iterable[dict], f: IO[bytes]) -> None:
    import pyarrow.parquet as pq

    writer = None
    chunk: list[dict] = []
    explain = None

    def flush() -> None:
        nonlocal writer
        table = parquet_table(chunk, bool(explain))
        if writer is None:
            writer = pq.ParquetWriter(f, table.schema)
        writer.write_table(table)
        chunk.clear()

    for record in records:
        if explain is None:
            explain = "scores" in record or "explanation" in record
        chunk.append(record)
        if len(chunk) >= _PARQUET_ROWS:
            flush()
    if chunk or writer is None:
        flush()
    writer.close()


# --- reading back ---------------------------------------------------------------------------------
def from_parquet_row(row: dict) -> dict:
    """A Parquet row as the record it was written from: absent fields dropped, scores a dict again."""
    record = {}
    for key, value in row.items():
        if value is None and key not in ("id",):
            continue
        if key == "scores":
            value = dict(value)
        elif key == "explanation":
            value = json.loads(value)
        record[key] = value
    return record


def iter_output(path: str | Path) -> Iterator[dict]:
    """The records of a JSON Lines or Parquet prediction file, in order; a malformed line raises DataError."""
    path = Path(path)
    parquet = path.suffix.lower() == ".parquet"
    for _, row, problem in iter_records(path):
        if problem is not None:
            raise problem
        yield from_parquet_row(row) if parquet else row


def read_predictions(path: str | Path) -> dict[str, list[str]]:
    """id -> labels from a JSON list, JSONL, CSV or Parquet of {"id", "labels"} records (the submission
    format)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "predictions file not found")
    records = read_records(path, required_columns=("id", "labels"),
                           expected='a JSON list of {"id", "labels"} records')
    out: dict[str, list[str]] = {}
    for i, record in enumerate(records):
        row = record.value
        if not isinstance(row, dict) or row.get("id") is None:
            raise DataError(path, f"record {i} has no 'id'")
        meme_id = str(row["id"])
        labels = row.get("labels")
        if not isinstance(labels, list):
            raise DataError(path, "record has no 'labels' list", meme_id)
        if meme_id in out:
            raise DataError(path, "duplicate id", meme_id)
        out[meme_id] = labels
    return out
