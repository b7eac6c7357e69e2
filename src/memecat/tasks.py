"""Tasks: each names its label space, its splits, how raw dataset labels map onto it, and its metric.

Models never hard-code a label count; they read `task.labels`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memecat.data.meme import Meme
from memecat.data.readers import read_dataset
from memecat.errors import DataError, MemecatError

SEMEVAL_DIR = "semeval2021-task6"
HARM_C_DIR = "harm-c"
HARM_LEVELS = ("not harmful", "somewhat harmful", "very harmful")
HARM_TARGETS = ("individual", "organization", "community", "society")


def _semeval_labels() -> tuple[str, ...]:
    # The organisers' order, kept as data so nothing else hard-codes it.
    listing = Path(__file__).with_name("techniques_list_task3.txt")
    return tuple(line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip())


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    labels: tuple[str, ...]
    multi_label: bool
    splits: dict[str, str]  # split name -> dataset file, relative to the data root
    metric: str  # "semeval" or "harm"
    ordinal: bool = False
    # How each raw dataset label maps to a task label (None: drop it). Identity when empty.
    label_map: dict[str, str | None] = field(default_factory=dict)
    harmful_only: bool = False  # harm-c-target: only harmful memes carry a target
    be_prompt: str = "This meme is {label}."
    not_prompt: str = "This meme is not {label}."
    # SimRe: the labels that get a be/not prompt pair (empty: every label). A 2-class task prompts its
    # positive class only ("This meme is harmful." / "... not harmful."), never "not not harmful".
    prompted_labels: tuple[str, ...] = ()

    def __post_init__(self):
        unprompted = set(self.labels) - set(self.prompted_labels) if self.prompted_labels else set()
        if not set(self.prompted_labels) <= set(self.labels) or len(unprompted) > (0 if self.multi_label else 1):
            raise ValueError(f"task {self.name}: prompted_labels must be its labels, or all but one of a "
                             f"single-label task's, got {self.prompted_labels}")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def task_labels(self, raw: tuple[str, ...] | list[str], path: str | Path | None = None,
                    meme_id: str | None = None) -> list[str]:
        """Raw dataset labels (or already task labels) -> task labels; unknown ones raise DataError."""
        out: list[str] = []
        for label in raw:
            if label in self.labels:
                mapped = label
            elif label in self.label_map:
                mapped = self.label_map[label]
            else:
                raise DataError(path, f"label {label!r} is not in task {self.name}'s label space", meme_id)
            if mapped is not None and mapped not in out:
                out.append(mapped)
        if not self.multi_label and len(out) != 1 and raw:
            raise DataError(path, f"task {self.name} needs exactly one label, got {list(raw)}", meme_id)
        return out

    def label_problems(self, memes: list[Meme], path: str | Path | None = None) -> list[DataError]:
        """Every labelled meme whose labels do not fit this task, as one DataError each."""
        problems = []
        for meme in memes:
            if meme.labels is not None:
                try:
                    self.task_labels(meme.labels, path, meme.id)
                except DataError as exc:
                    problems.append(exc)
        return problems

    def keeps(self, meme: Meme) -> bool:
        if not self.harmful_only or meme.labels is None:
            return True
        return not any(label == "not harmful" for label in meme.labels)

    def encode(self, memes: list[Meme], path: str | Path | None = None) -> np.ndarray:
        """Multi-hot (multi-label) or one-hot (single-label) targets, [N, num_labels] float32."""
        y = np.zeros((len(memes), self.num_labels), dtype=np.float32)
        index = {label: i for i, label in enumerate(self.labels)}
        for row, meme in enumerate(memes):
            if meme.labels is None:
                raise DataError(path, "meme has no labels", meme.id)
            for label in self.task_labels(meme.labels, path, meme.id):
                y[row, index[label]] = 1.0
        return y

    def decode(self, row: np.ndarray) -> list[str]:
        """A 0/1 row (multi-label) or a score row (single-label: argmax) -> label names."""
        if self.multi_label:
            return [label for label, on in zip(self.labels, row) if on > 0.5]
        return [self.labels[int(np.argmax(row))]]


_LEVEL_TO_BINARY = {"not harmful": "not harmful", "somewhat harmful": "harmful", "very harmful": "harmful"}
_HARM_SPLITS = {"train": f"{HARM_C_DIR}/train.jsonl", "val": f"{HARM_C_DIR}/val.jsonl",
                "test": f"{HARM_C_DIR}/test.jsonl"}


def _harm_task(name: str, description: str, labels: tuple[str, ...], **fields) -> Task:
    """A Harm-C task: one label per meme, the Harm-C splits, accuracy and macro-F1."""
    return Task(name=name, description=description, labels=labels, multi_label=False, splits=_HARM_SPLITS,
                metric="harm", **fields)


def _build_tasks() -> dict[str, Task]:
    drop_targets = {t: None for t in HARM_TARGETS}
    return {
        "semeval-t6": Task(
            name="semeval-t6",
            description="SemEval-2021 Task 6 subtask 3: 22 persuasion techniques, multi-label",
            labels=_semeval_labels(),
            multi_label=True,
            splits={
                "train": f"{SEMEVAL_DIR}/training_set_task3/training_set_task3.txt",
                "dev": f"{SEMEVAL_DIR}/dev_set_task3_labeled/dev_set_task3_labeled.txt",
                "test": f"{SEMEVAL_DIR}/test_set_task3/test_set_task3.txt",
            },
            metric="semeval",
            be_prompt="My technique is {label}.",
            not_prompt="My technique is not {label}.",
        ),
        "harm-c-2": _harm_task(
            "harm-c-2",
            "Harm-C: harmful (somewhat or very) vs not harmful",
            ("not harmful", "harmful"),
            label_map={**_LEVEL_TO_BINARY, **drop_targets},
            prompted_labels=("harmful",),
        ),
        "harm-c-3": _harm_task(
            "harm-c-3",
            "Harm-C: not / somewhat / very harmful (ordered)",
            HARM_LEVELS,
            ordinal=True,
            label_map=dict(drop_targets),
        ),
        "harm-c-target": _harm_task(
            "harm-c-target",
            "Harm-C: target of a harmful meme (individual / organization / community / society)",
            HARM_TARGETS,
            label_map={level: None for level in HARM_LEVELS},
            harmful_only=True,
            be_prompt="This meme targets {label}.",
            not_prompt="This meme does not target {label}.",
        ),
    }


TASKS = _build_tasks()
# Splits used for selection (validation) and for the final test, per task.
VALIDATION_SPLIT = {"semeval-t6": "dev", "harm-c-2": "val", "harm-c-3": "val", "harm-c-target": "val"}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise MemecatError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def default_data_root() -> Path:
    """`MEMECAT_DATA`, else ../shared/data beside the working directory or beside the source checkout."""
    env = os.environ.get("MEMECAT_DATA")
    if env:
        return Path(env)
    candidates = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    root = Path(data_root) if data_root else default_data_root()
    if not root.is_dir():
        raise MemecatError(
            f"data root {root} not found; point to the folder holding {SEMEVAL_DIR}/ and {HARM_C_DIR}/ "
            "with --data-root DIR or the MEMECAT_DATA environment variable"
        )
    return root


def split_path(task: Task, split: str, data_root: str | Path | None = None) -> Path:
    if split not in task.splits:
        raise MemecatError(f"task {task.name} has no split {split!r}; splits: {', '.join(task.splits)}")
    return resolve_data_root(data_root) / task.splits[split]


def load_split(task: Task, split: str, data_root: str | Path | None = None) -> list[Meme]:
    """A task's split, filtered to the memes the task covers, labels checked against its label space."""
    path = split_path(task, split, data_root)
    memes = [m for m in read_dataset(path) if task.keeps(m)]
    for meme in memes:
        if meme.labels is not None:
            task.task_labels(meme.labels, path, meme.id)
    return memes
