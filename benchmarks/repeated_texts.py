"""How often a meme's text repeats one seen in training: does 5-fold CV leak more than the test split will?

For each split of a task, the share of memes whose normalised text (lower case, letters and digits only)
also belongs to another meme of the training pool. Within train+val that other meme may fall in another CV
fold, so CV scores it as a near copy of a training meme; val and test are compared against train+val as a
whole. Text only, labels unused (the test split has none here):

    python benchmarks/repeated_texts.py --task harm-c-2
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

from memecat.tasks import VALIDATION_SPLIT, get_task, load_split


def normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="harm-c-2")
    args = parser.parse_args()
    task = get_task(args.task)
    val_split = VALIDATION_SPLIT[task.name]
    splits = {name: load_split(task, name) for name in ("train", val_split, "test")}
    pool = Counter(normalised(m.text) for name in ("train", val_split) for m in splits[name])
    print(f"{task.name}: memes whose text another train+{val_split} meme also has")
    for name, memes in splits.items():
        in_pool = name != "test"  # a pool meme's own copy does not count
        repeated = sum(pool[normalised(m.text)] > (1 if in_pool else 0) for m in memes)
        print(f"  {name:<6} {repeated:5d} of {len(memes):5d}  ({repeated / len(memes):.1%})")


if __name__ == "__main__":
    main()
