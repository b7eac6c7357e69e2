"""`memecat data check`: read a whole dataset and report every problem, not just the first."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from memecat.data.images import open_image
from memecat.data.meme import Meme
from memecat.data.readers import scan_dataset
from memecat.errors import DataError
from memecat.tasks import TASKS, get_task


def _image_problem(meme: Meme, dataset: Path) -> DataError | None:
    if meme.image_path is None:
        return DataError(dataset, "record has no 'image' field", meme.id)
    try:
        open_image(meme.image_path)
    except DataError as exc:
        return DataError(dataset, f"image {meme.image_path.name}: {exc.problem}", meme.id)
    return None


def check_file(path: Path, task_name: str | None = None, decode_images: bool = True) -> tuple[list[DataError], int]:
    memes, problems = scan_dataset(path)
    if task_name is not None:
        task = get_task(task_name)
        for meme in memes:
            if meme.labels is not None:
                try:
                    task.task_labels(meme.labels, path, meme.id)
                except DataError as exc:
                    problems.append(exc)
    if decode_images and memes:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda m: _image_problem(m, path), memes)
            problems.extend(p for p in tqdm(results, total=len(memes), desc=f"checking {path.name}",
                                            unit="image", leave=False, disable=None) if p is not None)
    return problems, len(memes)


def check_path(path: Path, task_name: str | None = None, decode_images: bool = True) -> tuple[list[DataError], int]:
    """A dataset file, or a data root: then every split of every task found under it."""
    if not path.is_dir():
        return check_file(path, task_name, decode_images)
    files: dict[Path, str] = {}
    for name, task in TASKS.items():
        if task_name is not None and name != task_name:
            continue
        for rel in task.splits.values():
            if (path / rel).exists():
                files.setdefault(path / rel, name)
    if not files:
        return [DataError(path, "no known dataset files under this folder; name a dataset file")], 0
    problems: list[DataError] = []
    count = 0
    for file, name in files.items():
        found, n = check_file(file, name, decode_images)
        problems += found
        count += n
    return problems, count
