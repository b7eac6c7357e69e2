"""Synthetic bulk inputs for the bulk benchmarks: the shared SemEval-2021 train and dev memes (text and image)
reused under new ids, as many as asked, in a JSON Lines file whose images sit under an `images` link beside
it (so no path leaves the dataset's folder). The scripts import it from their own folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from memecat.data.readers import read_dataset
from memecat.tasks import get_task, split_path


def synthetic_memes(folder: Path, n: int, data_root: Path | None = None) -> Path:
    """`folder/memes-N.jsonl` with n memes (written once; later calls reuse it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"memes-{n}.jsonl"
    if path.exists():
        return path
    task = get_task("semeval-t6")
    splits = [split_path(task, split, data_root) for split in ("train", "dev")]
    root = splits[0].parents[1]  # .../semeval2021-task6
    link = folder / "images"
    if not link.exists():
        link.symlink_to(root, target_is_directory=True)
    memes = [m for split in splits for m in read_dataset(split)]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i in range(n):
            meme = memes[i % len(memes)]
            image = os.path.relpath(meme.image, root) if meme.image is not None else None
            f.write(json.dumps({"id": f"syn-{i:07d}", "text": meme.text,
                                **({"image": f"images/{image}"} if image else {})}, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return path
