"""A prediction job's journal: the folder `<out>.parts/` beside the output, holding `job.json` (the model id and
the job's settings) and one shard per finished batch (JSON Lines, or Parquet for a Parquet output).

A shard appears whole or not at all (written to a hidden temporary file, synced, renamed), so a job killed in
any way loses only the batches in flight. Its name gives the first and last input position it holds; reading
the shards back in position order gives the records in input order whichever engine wrote them and in whatever
order batches finished. When the output is written the journal is removed.
"""

from __future__ import annotations

import heapq
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from memecat.errors import DataError, MemecatError
from memecat.files import write_json
from memecat.predict.batch import SEQ
from memecat.predict.outputs import from_parquet_row, parquet_table

JOB_FILE = "job.json"


def record_key(record: dict) -> str:
    """The key an output record answers for (see `Entry.key`): its id, or its place when it has no id."""
    return record["id"] if record.get("id") is not None else "\0" + str(record.get("where"))


class Shard(NamedTuple):
    first: int
    last: int
    path: Path


class Journal:
    def __init__(self, out: str | Path, fmt: str):
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")
        self.parquet = fmt == "parquet"
        self.suffix = ".parquet" if self.parquet else ".jsonl"

    # --- the job --------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.folder / JOB_FILE).is_file()

    def job(self) -> dict:
        try:
            return json.loads((self.folder / JOB_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MemecatError(f"{self.folder / JOB_FILE}: unreadable job file ({exc}); delete {self.folder} "
                               "to start the job over") from None

    def start(self, job: dict) -> None:
        """A fresh journal for `job`, replacing any earlier one."""
        self.remove()
        self.folder.mkdir(parents=True)
        write_json(self.folder / JOB_FILE, job)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def clean(self) -> None:
        """Drop the temporary files of batches that were being written when the job was killed."""
        for path in self.folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)

    # --- shards ---------------------------------------------------------------------------------
    def write(self, rows: list[dict], explain: bool) -> Path:
        """One finished batch (records carrying `_seq`) as a shard, durably: synced before it is named, and
        the folder synced after, so a reboot keeps it too."""
        rows = sorted(rows, key=lambda r: r[SEQ])
        first, last = rows[0][SEQ], rows[-1][SEQ]
        path = self.folder / f"part-{first:012d}-{last:012d}{self.suffix}"
        if self.parquet:
            import pyarrow.parquet as pq

            buffer = io.BytesIO()
            pq.write_table(parquet_table(rows, explain, seq=True), buffer)
            data = buffer.getvalue()
        else:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        tmp = self.folder / f".{path.name}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a retried batch lands on the same name: never held twice
        _sync_folder(self.folder)
        return path

    def shards(self) -> list[Shard]:
        out = []
        for path in self.folder.glob(f"part-*{self.suffix}"):
            try:
                _, first, last = path.name.removesuffix(self.suffix).split("-")
                out.append(Shard(int(first), int(last), path))
            except ValueError:
                continue  # not a shard this code wrote
        return sorted(out)

    def _shard_rows(self, shard: Shard) -> list[dict]:
        try:
            if self.parquet:
                import pyarrow.parquet as pq

                return [from_parquet_row(row) for row in pq.read_table(shard.path).to_pylist()]
            with shard.path.open(encoding="utf-8") as f:
                return [json.loads(line) for line in f]
        except Exception as exc:  # noqa: BLE001 - a damaged shard is named, whatever the parser raised
            raise DataError(shard.path, f"damaged journal shard ({exc}); delete it and resume to redo its "
                                        "memes") from None

    def done_keys(self) -> Iterator[str]:
        """The key of every record in the journal (for resuming: those entries are done)."""
        for shard in self.shards():
            if self.parquet:
                import pyarrow.parquet as pq

                try:
                    table = pq.read_table(shard.path, columns=["id", "where"])
                except Exception as exc:  # noqa: BLE001
                    raise DataError(shard.path, f"damaged journal shard ({exc}); delete it and resume to redo "
                                                "its memes") from None
                for meme_id, where in zip(table["id"].to_pylist(), table["where"].to_pylist()):
                    yield record_key({"id": meme_id, "where": where})
            else:
                for row in self._shard_rows(shard):
                    yield record_key(row)

    def rows(self) -> Iterator[dict]:
        """Every record in input order (shards merged by position), each position once."""
        last_seq = None
        for group in _overlapping(self.shards()):
            rows = (self._shard_rows(group[0]) if len(group) == 1 else
                    heapq.merge(*(self._shard_rows(s) for s in group), key=lambda r: r[SEQ]))
            for row in rows:
                if row[SEQ] != last_seq:
                    last_seq = row[SEQ]
                    yield row


def _overlapping(shards: Iterable[Shard]) -> Iterator[list[Shard]]:
    """Shards (sorted by first position) in groups whose position ranges overlap: each group merges on its
    own, so only overlapping shards (a batch redone with other bounds) are open at once."""
    group: list[Shard] = []
    reach = -1
    for shard in shards:
        if group and shard.first > reach:
            yield group
            group = []
        group.append(shard)
        reach = max(reach, shard.last)
    if group:
        yield group


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the shard itself is synced
    finally:
        os.close(fd)
