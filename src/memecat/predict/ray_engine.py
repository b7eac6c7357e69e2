"""The Ray engine (`pip install memecat[ray]`): the same job as the local engine, its batches run by an actor
pool on Ray Data.

- The input is read as a Ray dataset by one read task (the same reader as the local engine, so the same entries,
  problems and order), skipping what the journal already holds; the input file must be readable where that
  task runs (this machine with a local Ray, shared storage on a cluster).
- `map_batches` runs `_RayPredictor` actors: each loads the model once (its folder is shipped through Ray's
  object store, so it only has to exist where the command runs) and runs the same `Predictor` as the local
  engine. Images are read by the actors: their paths must be visible to the workers (shared storage), or the
  images carried as bytes in a Parquet input.
- The driver receives each predicted batch and writes it to the journal as a shard, so exactly-once and resume
  work as on one machine, and the output file is written from the journal just the same.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import ray
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from memecat.data.meme import Meme
from memecat.data.readers import Entry
from memecat.errors import MemecatError
from memecat.predict.batch import SEQ, Pending, Predictor, Reported
from memecat.predict.inputs import Source

ROWS = pa.schema([("seq", pa.int64()), ("where", pa.string()), ("id", pa.string()), ("text", pa.string()),
                  ("image_path", pa.string()), ("image_bytes", pa.binary()), ("error", pa.string())])
RESULTS = pa.schema([("seq", pa.int64()), ("record", pa.string())])
_ENV = ("MEMECAT_CACHE", "MEMECAT_RUNTIME", "MEMECAT_DATA")  # what workers need to see as the driver does


def run_ray(src: Source, done: set[str], model_folder: Path, model_id: str, sink: Callable[[list[dict]], None],
            *, batch_size: int, explain: bool, workers: int | None, address: str | None,
            max_image_bytes: int) -> None:
    """Predict every entry of `src` not in `done` on Ray; `sink` gets each predicted batch's records."""
    first = _first_block(src, done, batch_size)
    if first is None:
        return  # nothing left to predict: no need for Ray at all
    started = _connect(address, workers)
    settings = _DataSettings(block_bytes=max(1024, first.nbytes // 2))
    try:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # The read task needs no CPU of its own: the actors hold them all, and it only parses records.
        dataset = ray.data.read_datasource(_MemeSource(src, ray.put(frozenset(done)), batch_size, os.getcwd()),
                                           num_cpus=0, override_num_blocks=1)
        predicted = dataset.map_batches(
            _RayPredictor, batch_size=batch_size, batch_format="pyarrow", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=workers), runtime_env={"env_vars": _memecat_env()},
            fn_constructor_kwargs={"model_files": [ray.put(_folder_files(model_folder))], "model_id": model_id,
                                   "explain": explain, "max_image_bytes": max_image_bytes, "cwd": os.getcwd()})
        for table in predicted.iter_batches(batch_size=None, batch_format="pyarrow"):
            sink([{SEQ: seq, **json.loads(record)} for seq, record in
                  zip(table["seq"].to_pylist(), table["record"].to_pylist())])
    except ray.exceptions.RayError as exc:
        raise MemecatError(f"the Ray job failed: {_reason(exc)}") from None
    finally:
        settings.restore()
        if started:
            ray.shutdown()


def _first_block(src: Source, done: set[str], batch_size: int) -> pa.Table | None:
    """The first batch as the read task will make it: its size sets Ray's block size; reading it here also
    reports a source that cannot be read at all as plainly as the local engine does."""
    from memecat.predict.job import pending

    rows = [_row(item) for item, _ in zip(pending(src, done), range(batch_size))]
    return pa.Table.from_pylist(rows, schema=ROWS) if rows else None


class _DataSettings:
    """Ray Data settings for the job, restored after it.

    Ray gathers what a task yields into blocks of `target_max_block_size` bytes, and an actor's task takes
    whole blocks; half a batch's bytes makes blocks of about one batch, so batches spread over the actors and
    each comes back to the driver (and the journal) as soon as it is done. Ray Data's own progress bars and
    per-run log lines are off: the job has its bar.
    """

    def __init__(self, block_bytes: int):
        self.context = ray.data.DataContext.get_current()
        self.saved = (self.context.target_max_block_size, self.context.enable_progress_bars,
                      self.context.print_on_execution_start)
        self.context.target_max_block_size = block_bytes
        self.context.enable_progress_bars = self.context.print_on_execution_start = False
        self.logger = logging.getLogger("ray.data")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.filterwarnings("ignore", module="ray.data")  # "operator received 1 input(s)": one read task

    def restore(self) -> None:
        self.warnings.__exit__(None, None, None)
        self.logger.setLevel(self.level)
        (self.context.target_max_block_size, self.context.enable_progress_bars,
         self.context.print_on_execution_start) = self.saved


def _connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address`, or start a local Ray with `workers` CPUs; whether this call started it."""
    if ray.is_initialized():
        return False
    options = {"runtime_env": {"env_vars": _memecat_env()}, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **options)
    except ConnectionError as exc:
        raise MemecatError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return True


def _memecat_env() -> dict[str, str]:
    """The driver's memecat settings (feature cache, runtime), for the workers: a Ray started elsewhere does not
    see this process's environment."""
    return {name: os.environ[name] for name in _ENV if name in os.environ}


def _reason(exc: BaseException) -> str:
    """The user's error inside Ray's wrapping, on one line: memecat's own message when there is one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("memecat.") and ": " in line]
    if ours:
        return ours[-1].split(": ", 1)[-1]
    return lines[-1] if lines else type(exc).__name__


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


# --- reading --------------------------------------------------------------------------------------
class _MemeSource(Datasource):
    """The job's pending entries as blocks of one batch each, read by one task with the local engine's reader."""

    def __init__(self, src: Source, done, batch_size: int, cwd: str):
        super().__init__()
        self.src, self.done, self.batch_size, self.cwd = src, done, batch_size, cwd

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None):
        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(self._blocks, metadata, schema=ROWS, per_task_row_limit=per_task_row_limit)]

    def _blocks(self) -> Iterator[pa.Table]:
        from memecat.predict.job import pending

        _enter(self.cwd)
        done = ray.get(self.done)
        rows = []
        for item in pending(self.src, done):
            rows.append(_row(item))
            if len(rows) == self.batch_size:
                yield pa.Table.from_pylist(rows, schema=ROWS)
                rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=ROWS)


def _enter(cwd: str) -> None:
    """Relative paths mean what they meant where the command ran (with shared storage mounted alike)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)


def _row(item: Pending) -> dict:
    entry = item.entry
    row = {"seq": item.seq, "where": entry.where, "id": entry.id, "text": None, "image_path": None,
           "image_bytes": None, "error": None}
    if entry.meme is None:
        row["error"] = str(entry.problem)
        return row
    image = entry.meme.image
    row["text"] = entry.meme.text
    if isinstance(image, Path):
        row["image_path"] = str(image)
    elif isinstance(image, bytes):
        row["image_bytes"] = image
    elif image is not None:  # a PIL image handed over in memory: lossless PNG
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        row["image_bytes"] = buffer.getvalue()
    return row


def _entry(row: dict) -> Entry:
    if row["error"] is not None:
        return Entry(row["where"], row["id"], problem=Reported(row["error"]))
    image = Path(row["image_path"]) if row["image_path"] is not None else row["image_bytes"]
    return Entry(row["where"], row["id"], meme=Meme(id=row["id"], text=row["text"], image=image))


# --- predicting -----------------------------------------------------------------------------------
class _RayPredictor:
    """One actor: the model loaded once from the shipped folder, then batch after batch."""

    def __init__(self, model_files, model_id: str, explain: bool, max_image_bytes: int, cwd: str):
        from memecat.models.base import load_model

        _enter(cwd)
        model_files = ray.get(model_files[0])  # a reference inside a list: fetched here, held by no one
        self._folder = tempfile.TemporaryDirectory(prefix="memecat-model-")
        for name, data in model_files.items():
            Path(self._folder.name, name).write_bytes(data)
        self.predictor = Predictor(load_model(self._folder.name), model_id, explain=explain,
                                   max_image_bytes=max_image_bytes)

    def __call__(self, table: pa.Table) -> pa.Table:
        batch = [Pending(row["seq"], _entry(row)) for row in table.to_pylist()]
        records = self.predictor(batch)
        return pa.Table.from_pylist(
            [{"seq": r.pop(SEQ), "record": json.dumps(r, ensure_ascii=False)} for r in records], schema=RESULTS)
