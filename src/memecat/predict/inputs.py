"""What to predict, as a stream of entries (a meme, or the problem that keeps a record from being one):
one meme from the command line, a dataset file, a folder of images with a text sidecar, a task's split, or
memes handed over in memory.

A `Source` is a small picklable description, so the Ray engine can read it where it runs; `entries()` reads it
afresh each time, in the same order, each id once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from memecat.data.meme import Meme
from memecat.data.readers import OUTSIDE_HINT, Entry, escapes, iter_dataset, unique
from memecat.data.records import iter_records
from memecat.errors import DataError, MemecatError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
SIDECAR_SUFFIXES = (".json", ".jsonl", ".csv")


@dataclass(frozen=True)
class Source:
    """A dataset file (`kind="file"`), an image folder with a text sidecar (`"folder"`) or memes in memory."""

    kind: Literal["file", "folder", "memes"]
    path: Path | None = None
    memes: tuple[Meme, ...] = ()
    confine_images: bool = True  # image paths may not leave the dataset's folder
    task_name: str | None = None  # a task's split: only the memes the task covers

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<memes>"

    def entries(self) -> Iterator[Entry]:
        if self.kind == "file":
            entries = iter_dataset(self.path, confine_images=self.confine_images)
        elif self.kind == "folder":
            entries = _folder_entries(self.path, self.confine_images)
        else:
            entries = _memory_entries(self.memes)
        if self.task_name is not None:
            from memecat.tasks import get_task

            task = get_task(self.task_name)
            entries = (e for e in entries if e.meme is None or task.keeps(e.meme))
        return unique(entries, self.path)

    def size_hint(self) -> int | None:
        """How many records the source holds, when that is cheap to know (for the progress bar's total)."""
        if self.kind == "memes":
            return len(self.memes)
        if self.kind != "file" or not self.path.is_file():  # a FIFO cannot be read twice
            return None
        suffix = self.path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                return pq.ParquetFile(self.path).metadata.num_rows
            except Exception:  # noqa: BLE001 - the reader reports a bad file properly
                return None
        if suffix == ".jsonl":
            with self.path.open("rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(2**20), b""))
        return None


# --- opening a source -----------------------------------------------------------------------------
def open_source(source: str | Path | Iterable[Meme] | Source, *, allow_outside_paths: bool = False) -> Source:
    """A dataset file, an image folder (checked for its sidecar now, so a bad folder fails before any work)
    or memes; `allow_outside_paths` lets a dataset's image paths point outside its folder."""
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            find_sidecar(path)
            return Source("folder", path, confine_images=not allow_outside_paths)
        if not path.exists():
            raise DataError(path, "dataset file not found")
        return Source("file", path, confine_images=not allow_outside_paths)
    return Source("memes", memes=tuple(source), confine_images=False)


def split_source(task_name: str, split: str, data_root: str | Path | None = None) -> Source:
    from memecat.tasks import get_task, split_path

    path = split_path(get_task(task_name), split, data_root)
    if not path.exists():
        raise DataError(path, f"split {split!r} of task {task_name} not found")
    return Source("file", path, task_name=task_name)


def one_meme(*, image: str | Path | None = None, text: str | None = None) -> Source:
    """One meme from `image` and/or `text`: `text` alone is a text-only meme, `image` alone (or with empty
    text) an image-only one. Its problems are command-line mistakes, so they raise."""
    text = _plain_text(text)
    if image is None:
        if text is None:
            raise MemecatError("name an input file/folder, or give --text TEXT and/or --image FILE")
        if not text:
            raise MemecatError("--text is empty and no --image is given: a meme needs text, an image or both")
        return Source("memes", memes=(Meme(id="meme", text=text, image=None),), confine_images=False)
    image = Path(image)
    if not image.is_file():
        raise DataError(image, "image file not found")
    return Source("memes", memes=(Meme(id=image.stem, text=text or "", image=image),), confine_images=False)


def _plain_text(text: str | None) -> str | None:
    """Whitespace-only text is no text: an image-only meme's text is ""."""
    return text if text is None or text.strip() else ""


# --- memes in memory ------------------------------------------------------------------------------
def _memory_entries(memes: Iterable[Any]) -> Iterator[Entry]:
    for i, meme in enumerate(memes, start=1):
        where = f"meme {i}"
        if not isinstance(meme, Meme):
            yield Entry(where, None, problem=DataError(None, f"{where} is a {type(meme).__name__}, not a Meme"))
        elif not isinstance(meme.id, str) or not meme.id.strip():
            yield Entry(where, None, problem=DataError(None, f"{where} has no id"))
        elif not isinstance(meme.text, str):
            yield Entry(where, meme.id, problem=DataError(None, "text must be a string", meme.id))
        else:
            yield Entry(where, meme.id, meme=meme)


# --- a folder of images with a text sidecar -------------------------------------------------------
def find_sidecar(folder: Path) -> Path:
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


def _folder_entries(folder: Path, confine: bool) -> Iterator[Entry]:
    """The sidecar's images in its order, then the folder's other images (sorted by name) as image-only memes.

    An image the sidecar gives no or empty text is image-only too. A meme's id is its file name without the
    suffix; a sidecar record without an image name, with text that is not a string, or naming a path outside
    the folder is a problem entry (a named image that is not there fails when it is read).
    """
    sidecar = find_sidecar(folder)
    named: set[str] = set()  # normalised, so `./a.png` in the sidecar is a.png
    for where, row, problem in iter_records(
            sidecar, required_columns=("image", "text"), from_object=_named_texts,
            expected="a JSON object {image name: text} or a list of {image, text} records"):
        where = f"{sidecar.name} {where}"
        name = row.get("image") if isinstance(row, dict) else None
        if problem is None and (not isinstance(name, str) or not name):
            problem = DataError(sidecar, f"{where} has no 'image' field")
        if problem is not None:
            yield Entry(where, None, problem=problem)
            continue
        meme_id = Path(name).stem
        text = row.get("text")
        image = folder / name
        named.add(os.path.normpath(image))  # named, even if refused: not listed again as image-only
        if confine and escapes(name):
            problem = DataError(sidecar, f"image path {name!r} leaves the folder; {OUTSIDE_HINT}", meme_id)
        elif text is not None and not isinstance(text, str):
            problem = DataError(sidecar, f"image {name!r}: text must be a string, got {type(text).__name__}",
                                meme_id)
        if problem is not None:
            yield Entry(where, meme_id, problem=problem)
            continue
        yield Entry(where, meme_id, meme=Meme(id=meme_id, text=_plain_text(text) or "", image=image))
    # Hidden files are skipped: macOS leaves `._name.png` companions that are not images.
    listed = sorted(entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")
                    and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file())
    for name in listed:
        image = folder / name
        if os.path.normpath(image) not in named:
            yield Entry(name, image.stem, meme=Meme(id=image.stem, text="", image=image))
