"""The one parser for record files: JSON, JSON Lines, CSV and Parquet, read into records in file order.

- `.jsonl`: one JSON value per line; lines end only at "\\n", so U+2028, \\x85 or a form feed inside a text
  stay in the text; blank lines are skipped. Streamed line by line.
- `.csv`: a header row, then one record per row; quoted fields may span lines. A `labels` column holds
  `;`-separated names or a JSON list (`labels_from_cell`). Streamed row by row.
- `.parquet`: one record per row, streamed in small batches; binary columns come as bytes.
- any other suffix (`.json`, SemEval's `.txt`): one JSON document holding a list of records, parsed whole.

Text files are UTF-8 with or without a BOM. `iter_records` hands a record that cannot be parsed (a malformed
line, undecodable bytes, a CSV row with too many fields) to its caller as a problem and goes on; only a file that
cannot be read at all raises. `read_records` is the strict form: the first problem raises. Every problem is a
one-line DataError naming the file and where in it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from memecat.errors import DataError

LABELS_COLUMN = "labels"
_JSON_SPACE = " \t\r\n"  # what JSON itself calls whitespace: a line of only these is blank
_BOM = b"\xef\xbb\xbf"
# A JSON Lines record longer than this is refused without being held in memory: a file with no line breaks
# must not make the reader swallow gigabytes. Memes are short texts and a path.
MAX_LINE_BYTES = 16 * 2**20
_PARQUET_BATCH_ROWS = 64  # rows decoded at a time: image bytes can be large


class Record(NamedTuple):
    """One record and where it sits, for messages: "line 3" (JSON Lines, CSV), "record 2" (JSON list) or
    "row 4" (Parquet). A record that could not be parsed has value None and its `problem`."""

    where: str
    value: Any  # a dict for well-formed files; other JSON values are left for the caller to refuse
    problem: DataError | None = None


class _NotUtf8(DataError):
    """A CSV row holding bytes that are not UTF-8; the strict reader reports the file offset instead."""


def iter_records(path: str | Path, *, required_columns: Collection[str] = (),
                 from_object: Callable[[dict], Any] | None = None,
                 expected: str = "a JSON list of records") -> Iterator[Record]:
    """Every record of a record file, in file order, streamed where the format allows.

    `required_columns` must all be in a CSV header or a Parquet schema. A JSON document must be a list, or an
    object that `from_object` turns into one; otherwise the error says the file should hold `expected`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_records(path)
    if suffix == ".csv":
        return _csv_records(path, required_columns)
    if suffix == ".parquet":
        return _parquet_records(path, required_columns)
    return _json_records(path, from_object, expected)


def read_records(path: str | Path, *, required_columns: Collection[str] = (),
                 from_object: Callable[[dict], Any] | None = None,
                 expected: str = "a JSON list of records") -> list[Record]:
    """Every record of a record file, in file order; the first malformed record raises DataError."""
    records = []
    for record in iter_records(path, required_columns=required_columns, from_object=from_object,
                               expected=expected):
        if isinstance(record.problem, _NotUtf8):
            raise _not_utf8(Path(path))
        if record.problem is not None:
            raise record.problem
        records.append(record)
    return records


def labels_from_cell(cell: str) -> list[Any] | None:
    """A CSV labels cell: a JSON list if it starts with "[", else `;`-separated names; empty means unlabelled.
    Raises ValueError for a "[" cell that is not JSON."""
    cell = cell.strip()
    if cell.startswith("["):
        return json.loads(cell)
    if not cell:
        return None
    return [name.strip() for name in cell.split(";") if name.strip()]


def _cannot_read(path: Path, exc: OSError) -> DataError:
    """A folder, no permission, a vanished file: still one line naming the file."""
    return DataError(path, f"cannot read the file ({exc.strerror or exc})")


@contextmanager
def _opened(path: Path, mode: str = "rb", **kwargs) -> Iterator[Any]:
    try:
        with path.open(mode, **kwargs) as f:
            yield f
    except OSError as exc:
        raise _cannot_read(path, exc) from None


def _not_utf8(path: Path) -> DataError:
    """The streaming decoder counts bytes from its current chunk; decoding the whole file finds the file offset."""
    try:
        path.read_bytes().decode("utf-8")  # a BOM is valid UTF-8, so offsets count it like any byte
    except UnicodeDecodeError as exc:
        return DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    return DataError(path, "not UTF-8 text")  # the file changed between the two reads


# --- JSON Lines -----------------------------------------------------------------------------------
def _jsonl_records(path: Path) -> Iterator[Record]:
    # Bytes, split at b"\n" only, each line decoded on its own: a bad byte costs one record, not the file.
    with _opened(path) as f:
        offset = 0
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            start, offset = offset, offset + len(raw)
            where = f"line {lineno}"
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                offset += _skip_line(f)
                yield Record(where, None, DataError(path, f"{where} is over the {MAX_LINE_BYTES // 2**20} MB "
                                                          f"record cap"))
                continue
            body = raw[len(_BOM):] if lineno == 1 and raw.startswith(_BOM) else raw
            try:
                line = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = start + (len(raw) - len(body)) + exc.start
                yield Record(where, None, DataError(path, f"not UTF-8 text ({exc.reason} at byte {at})"))
                continue
            if not line.strip(_JSON_SPACE):
                continue
            try:  # without its "\n", so an error at the end of the line gets this line's number and column
                yield Record(where, json.loads(line.removesuffix("\n")))
            except json.JSONDecodeError as exc:
                yield Record(where, None, DataError(
                    path, f"malformed JSON on line {lineno} column {exc.colno}: {exc.msg}"))


def _skip_line(f) -> int:
    """Read past the rest of an over-long line in bounded chunks; the bytes skipped."""
    skipped = 0
    while chunk := f.readline(MAX_LINE_BYTES):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


# --- CSV ------------------------------------------------------------------------------------------
def _csv_records(path: Path, required_columns: Collection[str]) -> Iterator[Record]:
    # surrogateescape: a bad byte becomes a lone surrogate in its cell, found per row, instead of an exception
    # that would end the file. newline="": the csv module sees line breaks inside quoted fields.
    with _opened(path, "r", encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        # Strict: a quote left open would otherwise swallow the rest of the file into one field.
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise DataError(path, f"malformed CSV header: {exc}") from None
        if not _is_utf8(header):
            raise _not_utf8(path)
        _check_header(path, header, required_columns)
        start = reader.line_num + 1  # the line the current row starts on; a quoted field can span several
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(f"line {start}", None,
                             DataError(path, f"malformed CSV in the row starting on line {start}: {exc}"))
            else:
                if cells:  # a blank line reads as []
                    yield _csv_row(path, start, header, cells)
            start = reader.line_num + 1


def _is_utf8(cells: list[str]) -> bool:
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_header(path: Path, header: list[str], required_columns: Collection[str]) -> None:
    missing = set(required_columns) - set(header)
    if missing:
        raise DataError(path, f"CSV header lacks column(s) {', '.join(sorted(missing))}")


def _csv_row(path: Path, lineno: int, header: list[str], cells: list[str]) -> Record:
    """The row as {column: cell}; a short row lacks its last columns, a long one is a problem (most likely a
    comma in an unquoted text)."""
    where = f"line {lineno}"
    if not _is_utf8(cells):
        return Record(where, None, _NotUtf8(path, f"{where}: not UTF-8 text"))
    if len(cells) > len(header):
        return Record(where, None, DataError(
            path, f"{where}: {len(cells)} fields, but the header names {len(header)} columns"))
    row: dict[str, Any] = dict(zip(header, cells))
    if LABELS_COLUMN in row:
        try:
            row[LABELS_COLUMN] = labels_from_cell(row[LABELS_COLUMN])
        except ValueError:
            return Record(where, None, DataError(path, f"{where}: labels column is not a JSON list"))
    return Record(where, row)


# --- Parquet --------------------------------------------------------------------------------------
def _parquet_records(path: Path, required_columns: Collection[str]) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(path, f"not a readable Parquet file ({_first_line(exc)})") from None
    with parquet:
        missing = set(required_columns) - set(parquet.schema_arrow.names)
        if missing:
            raise DataError(path, f"Parquet file lacks column(s) {', '.join(sorted(missing))}")
        row = 0
        try:
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
                for value in _batch_rows(path, batch, row + 1):
                    row += 1
                    yield Record(f"row {row}", None, value) if isinstance(value, DataError) else Record(
                        f"row {row}", value)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(path, f"Parquet file damaged after row {row} ({_first_line(exc)})") from None


def _batch_rows(path: Path, batch, first_row: int) -> list[dict | DataError]:
    """The batch's rows as dicts; if the batch will not convert (a string column holding bytes that are not
    UTF-8), row by row, so only the bad rows become problems."""
    import pyarrow as pa

    try:
        return batch.to_pylist()
    except (pa.ArrowException, UnicodeDecodeError):
        out: list[dict | DataError] = []
        for i in range(batch.num_rows):
            try:
                out.extend(batch.slice(i, 1).to_pylist())
            except (pa.ArrowException, UnicodeDecodeError) as exc:
                out.append(DataError(path, f"row {first_row + i}: unreadable value ({_first_line(exc)})"))
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- one JSON document ----------------------------------------------------------------------------
def _json_records(path: Path, from_object: Callable[[dict], Any] | None, expected: str) -> Iterator[Record]:
    # A JSON document has no record boundaries to stream by; the organisers' files are a few MB.
    try:
        with path.open(encoding="utf-8-sig") as f:
            data = json.load(f)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if isinstance(data, dict) and from_object is not None:
        data = from_object(data)
    if not isinstance(data, list):
        raise DataError(path, f"expected {expected}")
    return (Record(f"record {i}", value) for i, value in enumerate(data, start=1))
