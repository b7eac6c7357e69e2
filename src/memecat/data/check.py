"""`memecat data check`: read a whole dataset and report every problem, not just the first."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.data.readers import scan_dataset
from memecat.data.sources import SOURCES
from memecat.errors import DataError
from memecat.tasks import TASKS, get_task


def _image_problem(meme: Meme, dataset: Path) -> DataError | None:
    if meme.image is None:  # a text-only meme
        return None
    try:
        open_image(meme.image)
    except DataError as exc:
        return DataError(dataset, f"image {meme.image.name}: {exc.problem}", meme.id)
    return None


def check_file(path: Path, task_name: str | None = None, decode_images: bool = True) -> tuple[list[DataError], int]:
    memes, problems = scan_dataset(path)
    if task_name is not None:
        problems += get_task(task_name).label_problems(memes, path)
    if decode_images and memes:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda m: _image_problem(m, path), memes)
            problems.extend(p for p in tqdm(results, total=len(memes), desc=f"checking {path.name}",
                                            unit="image", leave=False, disable=None) if p is not None)
    return problems, len(memes)


def check_source(root: Path, name: str, task_name: str | None = None) -> tuple[list[DataError], int]:
    """An extra training source (text only, so no images to decode): its records and its labels."""
    source = SOURCES[name]
    memes, problems = (source.scan_all or source.scan)(root)
    task = get_task(task_name if task_name in source.tasks else source.tasks[0])
    return problems + task.label_problems(memes, root / source.folder), len(memes)


def check_path(path: Path, task_name: str | None = None, decode_images: bool = True) -> tuple[list[DataError], int]:
    """A dataset file; a dataset folder in its released layout (a task's or an extra source's); or a data root:
    then every split of every task and every extra source found under it."""
    if not path.is_dir():
        return check_file(path, task_name, decode_images)
    # A data root holds the folders; a dataset folder is one of them, so its parent is the root.
    root = path if any((path / s.folder).is_dir() for s in SOURCES.values()) or any(
        (path / rel).exists() for t in TASKS.values() for rel in t.splits.values()) else path.parent
    inside = (lambda rel: True) if root == path else (lambda rel: Path(rel).parts[0] == path.name)
    files: dict[Path, str] = {}
    for name, task in TASKS.items():
        if task_name is not None and name != task_name:
            continue
        for rel in task.splits.values():
            if inside(rel) and (root / rel).exists():
                files.setdefault(root / rel, name)
    sources = [name for name, s in SOURCES.items() if inside(s.folder) and (root / s.folder).is_dir()
               and (task_name is None or task_name in s.tasks)]
    if not files and not sources:
        return [DataError(path, "no known dataset files under this folder; name a dataset file")], 0
    problems: list[DataError] = []
    count = 0
    for file, name in files.items():
        found, n = check_file(file, name, decode_images)
        problems += found
        count += n
    for name in sources:
        found, n = check_source(root, name, task_name)
        problems += found
        count += n
    return problems, count
