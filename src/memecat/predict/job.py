"""`predict_dataset`: a bulk prediction job, streamed, resumable, on this machine or on Ray.

    import memecat
    memecat.predict_dataset("runs/main/model", "memes.parquet", "scores.jsonl")            # local
    memecat.predict_dataset("runs/main/model", "memes.parquet", "scores.jsonl", engine="ray")

Every input record ends up in the output exactly once, as labels or as an error record, however often the job
is stopped and resumed: finished batches are kept in the journal `<out>.parts/` (see `journal.py`), resuming
skips what is there, and the output file is written from the journal at the end.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tqdm import tqdm

from memecat.data.meme import Meme
from memecat.errors import DataError, MemecatError
from memecat.predict.batch import MAX_IMAGE_BYTES, SEQ, Pending, Predictor
from memecat.predict.inputs import Source, open_source
from memecat.predict.journal import Journal, record_key
from memecat.predict.model_id import model_id
from memecat.predict.outputs import KEEPS_MODEL, csv_columns, iter_output, output_format, write_predictions

if TYPE_CHECKING:
    from memecat.models.base import MemeModel

Engine = Literal["local", "ray"]


@dataclass
class Summary:
    """What a job did. `records` and `errors` count the whole output, earlier runs' records included."""

    out: str
    model_id: str
    records: int = 0
    errors: int = 0
    predicted: int = 0  # records made by this run
    skipped: int = 0  # records already in the output or the journal when this run started
    seconds: float = 0.0

    def line(self) -> str:
        rate = f" ({self.predicted / self.seconds:,.1f} memes/s)" if self.seconds > 0 and self.predicted else ""
        return (f"{self.out}: {self.records:,} records, {self.records - self.errors:,} labelled, "
                f"{self.errors:,} errors; this run {self.predicted:,} in {self.seconds:.1f} s{rate}, "
                f"{self.skipped:,} kept from before; model {self.model_id}")


def predict_dataset(model: str | Path | MemeModel, source: str | Path | Iterable[Meme] | Source,
                    out: str | Path, *, engine: Engine = "local", resume: bool = True, fmt: str | None = None,
                    batch_size: int = 64, explain: bool = False, allow_outside_paths: bool = False,
                    workers: int | None = None, ray_address: str | None = None, progress: bool = True,
                    max_image_bytes: int = MAX_IMAGE_BYTES, log=None) -> Summary:
    """Predict every meme of `source` (a dataset file, an image folder with a text sidecar, or memes) with
    `model` (a model folder, or a fitted model) into `out` (.json, .jsonl, .csv or .parquet; "-" is stdout).

    `resume` keeps what an interrupted job (or a finished JSON Lines or Parquet output) already holds for this
    model and predicts the rest; without it an interrupted job's journal is refused rather than overwritten.
    `engine="ray"` runs the batches on Ray (`workers` actors; a local Ray unless `ray_address`). `log` gets
    one-line notices (default: stderr).
    """
    if engine not in ("local", "ray"):
        raise MemecatError(f"unknown engine {engine!r}; choose local or ray")
    if batch_size < 1:
        raise MemecatError("batch size must be at least 1")
    fmt = output_format(out, fmt)
    log = log or _stderr
    src = open_source(source, allow_outside_paths=allow_outside_paths)
    with _ModelFolder(model) as (folder, loaded):
        mid = model_id(folder)
        summary = Summary(str(out), mid)
        started = time.perf_counter()
        # Loaded before the journal starts, here even for Ray (whose actors load their own copy): a model that
        # will not load is one clear error, and leaves nothing behind.
        from memecat.models.base import load_model

        loaded = loaded or load_model(folder)
        predictor = Predictor(loaded, mid, explain=explain, max_image_bytes=max_image_bytes)
        if str(out) == "-":
            rows: list[dict] = []
            _run(engine, src, set(), folder, predictor, mid, rows.extend, batch_size, explain, workers,
                 ray_address, progress, max_image_bytes, summary)
            if not rows:
                raise DataError(src.name, "holds no memes to predict")
            rows.sort(key=lambda r: r[SEQ])
            summary.seconds = time.perf_counter() - started
            _finish(rows, out, fmt, None, summary)
            return summary
        journal = Journal(out, fmt)
        base = _open_journal(journal, Path(out), fmt, mid, explain, resume, src, folder, log)
        done = set(journal.done_keys())
        if base:
            done.update(record_key(r) for r in iter_output(out))
        summary.skipped = len(done)

        def sink(batch_rows: list[dict]) -> None:
            journal.write(batch_rows, explain)

        try:
            _run(engine, src, done, folder, predictor, mid, sink, batch_size, explain, workers, ray_address,
                 progress, max_image_bytes, summary)
        except BaseException:
            if not journal.shards():  # nothing finished: nothing to resume
                journal.remove()
            raise
        summary.seconds = time.perf_counter() - started
        if summary.predicted == 0 and summary.skipped == 0:
            journal.remove()
            raise DataError(src.name, "holds no memes to predict")

        def records() -> Iterator[dict]:
            return chain(iter_output(out) if base else (), journal.rows())

        _finish(records, out, fmt, journal, summary)
        return summary


def _stderr(message: str) -> None:
    import click

    click.echo(message, err=True)


# --- the model ------------------------------------------------------------------------------------
class _ModelFolder:
    """(folder, model or None): a folder as given; a fitted model saved to a temporary folder, which gives it
    an id and is what Ray ships to its workers."""

    def __init__(self, model):
        self.model = model
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> tuple[Path, MemeModel | None]:
        if isinstance(self.model, (str, Path)):
            from memecat.models.base import read_model_metadata

            read_model_metadata(self.model)  # a clear error for a bad folder before any work
            return Path(self.model), None
        self._tmp = tempfile.TemporaryDirectory(prefix="memecat-model-")
        try:
            self.model.save_pretrained(self._tmp.name)
        except NotImplementedError:
            raise MemecatError(f"cannot save this {type(self.model).__name__} to give it an id; pass its model "
                               f"folder instead") from None
        return Path(self._tmp.name), self.model

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# --- the journal ----------------------------------------------------------------------------------
def _open_journal(journal: Journal, out: Path, fmt: str, mid: str, explain: bool, resume: bool, src: Source,
                  model_folder: Path, log) -> bool:
    """Start or continue the journal; whether the existing output file is part of the job (its records kept)."""
    held = len(journal.shards()) if journal.exists() else 0
    if held:  # a journal without a finished batch holds nothing to keep
        job = journal.job()
        if not resume:
            raise MemecatError(f"{journal.folder} holds an interrupted job ({held} finished batches): add "
                               f"--resume to finish it, or delete the folder to start over")
        if job.get("model_id") != mid:
            raise MemecatError(f"{journal.folder} was started with model {job.get('model_id')} "
                               f"({job.get('model')}), not {mid} ({model_folder}): resume with that model, or "
                               f"delete the folder to start over")
        if bool(job.get("explain")) != explain:
            raise MemecatError(f"{journal.folder} was started {'with' if job.get('explain') else 'without'} "
                               f"--explain: resume the same way, or delete the folder to start over")
        journal.clean()
        return bool(job.get("base"))
    base = False
    if resume and out.is_file():
        models = {r.get("model") for r in iter_output(out)} if fmt in KEEPS_MODEL else {None}
        if models - {mid, None}:
            others = ", ".join(sorted(str(m) for m in models - {mid, None}))
            raise MemecatError(f"{out} holds predictions of model {others}, not {mid} ({model_folder}): "
                               f"resume with that model, or write to another --out")
        if None in models:
            log(f"{out}: its records do not say which model wrote them, so none can be kept; predicting every "
                f"meme again")
        else:
            base = True
    journal.start({"memecat_job": 1, "model_id": mid, "model": str(model_folder), "input": src.name,
                   "format": fmt, "explain": explain, "base": base,
                   "started": datetime.now(UTC).isoformat(timespec="seconds")})
    return base


# --- running --------------------------------------------------------------------------------------
def _run(engine: Engine, src: Source, done: set[str], folder: Path, predictor: Predictor, mid: str,
         sink, batch_size: int, explain: bool, workers: int | None, ray_address: str | None, progress: bool,
         max_image_bytes: int, summary: Summary) -> None:
    bar = tqdm(total=src.size_hint(), initial=len(done), unit="meme", desc="predict", disable=not progress,
               dynamic_ncols=True)
    with bar:
        def counted(rows: list[dict]) -> None:
            sink(rows)
            summary.predicted += len(rows)
            bar.update(len(rows))

        if engine == "ray":
            from memecat.predict.ray_engine import run_ray

            run_ray(src, done, folder, mid, counted, batch_size=batch_size, explain=explain, workers=workers,
                    address=ray_address, max_image_bytes=max_image_bytes)
            return
        batch: list[Pending] = []
        for item in pending(src, done):
            batch.append(item)
            if len(batch) == batch_size:
                counted(predictor(batch))
                batch = []
        if batch:
            counted(predictor(batch))


def pending(src: Source, done: set[str]) -> Iterator[Pending]:
    """The source's entries not yet in the output, with their input positions."""
    for seq, entry in enumerate(src.entries()):
        if entry.key not in done:
            yield Pending(seq, entry)


# --- the output -----------------------------------------------------------------------------------
def _finish(records, out, fmt: str, journal: Journal | None, summary: Summary) -> None:
    """Write the output from the records (a list, or a function giving a fresh iterator each call), each key
    once, counting records and errors; then drop the journal."""
    fresh = records if callable(records) else (lambda: iter(records))

    def once() -> Iterator[dict]:
        seen: set[str] = set()
        summary.records = summary.errors = 0
        for record in fresh():
            key = record_key(record)
            if key in seen:
                continue
            seen.add(key)
            summary.records += 1
            summary.errors += "error" in record
            yield record

    columns = csv_columns(once()) if fmt == "csv" else None
    write_predictions(once(), out, fmt, columns=columns)
    if journal is not None:
        journal.remove()

