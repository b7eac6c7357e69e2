"""The one parser for record files: JSON, JSON Lines and CSV, read into records in file order.

- `.jsonl`: one JSON value per line; lines end only at "\\n", so U+2028, \\x85 or a form feed inside a text
  stay in the text; blank lines are skipped.
- `.csv`: a header row, then one record per row; quoted fields may span lines. A `labels` column holds
  `;`-separated names or a JSON list (`labels_from_cell`).
- any other suffix (`.json`, SemEval's `.txt`): one JSON document holding a list of records.

Files are UTF-8 with or without a BOM. Every problem is a one-line DataError naming the file and where in it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from memecat.errors import DataError

LABELS_COLUMN = "labels"
_JSON_SPACE = " \t\r\n"  # what JSON itself calls whitespace: a line of only these is blank


class Record(NamedTuple):
    """One record and where it sits, for messages: "line 3" (JSON Lines, CSV) or "record 2" (JSON list)."""

    where: str
    value: Any  # a dict for well-formed files; other JSON values are left for the caller to refuse


def read_records(path: str | Path, *, required_columns: Collection[str] = (),
                 from_object: Callable[[dict], Any] | None = None,
                 expected: str = "a JSON list of records") -> list[Record]:
    """Every record of a record file, in file order; a malformed file raises DataError.

    `required_columns` must all be in a CSV header. A JSON document must be a list, or an object that
    `from_object` turns into one; otherwise the error says the file should hold `expected`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with _opened(path, newline="\n") as f:
            return _jsonl_records(path, f)
    if suffix == ".csv":
        with _opened(path, newline="") as f:  # the csv module sees line breaks inside quoted fields
            return _csv_records(path, f, required_columns)
    with _opened(path, newline=None) as f:
        return _json_records(path, f, from_object, expected)


def labels_from_cell(cell: str) -> list[Any] | None:
    """A CSV labels cell: a JSON list if it starts with "[", else `;`-separated names; empty means unlabelled.
    Raises ValueError for a "[" cell that is not JSON."""
    cell = cell.strip()
    if cell.startswith("["):
        return json.loads(cell)
    if not cell:
        return None
    return [name.strip() for name in cell.split(";") if name.strip()]


@contextmanager
def _opened(path: Path, newline: str | None) -> Iterator[TextIO]:
    try:
        with path.open(encoding="utf-8-sig", newline=newline) as f:
            yield f
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:  # a folder, no permission: still one line naming the file
        raise DataError(path, f"cannot read the file ({exc.strerror})") from None


def _not_utf8(path: Path) -> DataError:
    """The streaming decoder counts bytes from its current chunk; decoding the whole file finds the file offset."""
    try:
        path.read_bytes().decode("utf-8")  # a BOM is valid UTF-8, so offsets count it like any byte
    except UnicodeDecodeError as exc:
        return DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    return DataError(path, "not UTF-8 text")  # the file changed between the two reads


def _jsonl_records(path: Path, lines: TextIO) -> list[Record]:
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip(_JSON_SPACE):
            continue
        try:  # without its "\n", so an error at the end of the line gets this line's number and column
            records.append(Record(f"line {lineno}", json.loads(line.removesuffix("\n"))))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON on line {lineno} column {exc.colno}: {exc.msg}") from None
    return records


def _csv_records(path: Path, f: TextIO, required_columns: Collection[str]) -> list[Record]:
    # Strict: a quote left open would otherwise swallow the rest of the file into one field.
    reader = csv.reader(f, strict=True)
    start = 1  # the line the current row starts on; a quoted field can carry it over several lines
    try:
        header = next(reader, [])
        _check_header(path, header, required_columns)
        records = []
        start = reader.line_num + 1
        for cells in reader:
            if cells:  # a blank line reads as []
                records.append(Record(f"line {start}", _csv_row(path, start, header, cells)))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV in the row starting on line {start}: {exc}") from None
    return records


def _check_header(path: Path, header: list[str], required_columns: Collection[str]) -> None:
    missing = set(required_columns) - set(header)
    if missing:
        raise DataError(path, f"CSV header lacks column(s) {', '.join(sorted(missing))}")


def _csv_row(path: Path, lineno: int, header: list[str], cells: list[str]) -> dict[str, Any]:
    """The row as {column: cell}; a short row lacks its last columns, a long one is an error (most likely a
    comma in an unquoted text)."""
    if len(cells) > len(header):
        raise DataError(path, f"line {lineno}: {len(cells)} fields, but the header names {len(header)} columns")
    row: dict[str, Any] = dict(zip(header, cells))
    if LABELS_COLUMN in row:
        try:
            row[LABELS_COLUMN] = labels_from_cell(row[LABELS_COLUMN])
        except ValueError:
            raise DataError(path, f"line {lineno}: labels column is not a JSON list") from None
    return row


def _json_records(path: Path, f: TextIO, from_object: Callable[[dict], Any] | None,
                  expected: str) -> list[Record]:
    try:
        data = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if isinstance(data, dict) and from_object is not None:
        data = from_object(data)
    if not isinstance(data, list):
        raise DataError(path, f"expected {expected}")
    return [Record(f"record {i}", value) for i, value in enumerate(data, start=1)]
