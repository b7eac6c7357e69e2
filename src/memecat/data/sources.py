"""Extra training sources: labelled text-only examples from sibling datasets, read into the one Meme record.

- `semeval2024-task4`: SemEval-2024 Task 4 subtask 2a memes, the same 22 techniques as SemEval-2021 subtask 3.
  Its `train.json` trains; `val.json` stays a second held-out check (`load_semeval2024(..., "val")`).
- `ptc`: the Propaganda Techniques Corpus (SemEval-2020 Task 11), news-article fragments with 14 techniques
  mapped onto SemEval-2021's names by `PTC_LABELS`.
- `harm-p`: Harm-P (HarMeme's US-politics set, same label scheme as Harm-C), all three splits.

Every source is text only: its images are not distributed, so `image` is None. Ids are prefixed with
the source name so they can never collide with the task's own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from memecat.data.meme import Meme
from memecat.data.readers import scan_dataset
from memecat.errors import DataError, MemecatError
from memecat.tasks import get_task

SEMEVAL2024_DIR = "semeval2024-task4"
PTC_DIR = "ptc-semeval2020-task11"
HARM_P_DIR = "harm-p"

# PTC technique -> SemEval-2021 technique(s). A merged PTC class names several 2021 techniques; one fragment of
# it is an example of one of them, which one unknown.
PTC_LABELS: dict[str, tuple[str, ...]] = {
    "Appeal_to_Authority": ("Appeal to authority",),
    "Appeal_to_fear-prejudice": ("Appeal to fear/prejudice",),
    # 2021 split this class in two; PTC kept them together.
    "Bandwagon,Reductio_ad_hitlerum": ("Bandwagon", "Reductio ad hitlerum"),
    # 2021 adds "/Dictatorship" to the same fallacy.
    "Black-and-White_Fallacy": ("Black-and-white Fallacy/Dictatorship",),
    "Causal_Oversimplification": ("Causal Oversimplification",),
    "Doubt": ("Doubt",),
    "Exaggeration,Minimisation": ("Exaggeration/Minimisation",),
    "Flag-Waving": ("Flag-waving",),
    "Loaded_Language": ("Loaded Language",),
    "Name_Calling,Labeling": ("Name calling/Labeling",),
    "Repetition": ("Repetition",),
    "Slogans": ("Slogans",),
    "Thought-terminating_Cliches": ("Thought-terminating cliché",),
    # 2021 has all three as techniques of their own (Straw Man and Red Herring under longer names).
    "Whataboutism,Straw_Men,Red_Herring": (
        "Whataboutism",
        "Misrepresentation of Someone's Position (Straw Man)",
        "Presenting Irrelevant Data (Red Herring)",
    ),
}
PTC_LABELS_FILE = "train-task2-TC.labels"
PTC_ARTICLES = "train-articles"


def _text_only(memes: list[Meme], source: str) -> list[Meme]:
    return [replace(m, id=f"{source}/{m.id}", image=None, source=source) for m in memes]


def scan_semeval2024(root: Path, split: str = "train") -> tuple[list[Meme], list[DataError]]:
    """SemEval-2024 memes of one split; the released text writes line breaks as the two characters \\ n."""
    memes, problems = scan_dataset(root / SEMEVAL2024_DIR / f"{split}.json")
    memes = [replace(m, text=m.text.replace("\\n", "\n")) for m in memes]
    return _text_only(memes, SEMEVAL2024_DIR), problems


def scan_harm_p(root: Path) -> tuple[list[Meme], list[DataError]]:
    """Every Harm-P split; a record whose labels are empty strings is a problem, not an example."""
    memes, problems = [], []
    for split in ("train", "val", "test"):
        path = root / HARM_P_DIR / f"{split}.jsonl"
        found, bad = scan_dataset(path)
        problems += bad
        for meme in found:
            if not meme.labels or not all(label.strip() for label in meme.labels):
                problems.append(DataError(path, f"empty label {list(meme.labels or [])}", meme.id))
            else:
                memes.append(meme)
    return _text_only(memes, HARM_P_DIR), problems


@dataclass(frozen=True)
class Fragment:
    article: str
    technique: str
    start: int
    end: int


def _ptc_fragments(folder: Path) -> tuple[list[Fragment], dict[str, str], list[DataError]]:
    path = folder / PTC_LABELS_FILE
    if not path.is_file():
        return [], {}, [DataError(path, "PTC label file not found")]
    articles: dict[str, str] = {}
    fragments, problems = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"line {lineno}"
        if len(fields) != 4 or not fields[2].isdigit() or not fields[3].isdigit():
            problems.append(DataError(path, f"{where}: expected article id, technique, start, end (tab-separated)"))
            continue
        article, technique, start, end = fields[0], fields[1], int(fields[2]), int(fields[3])
        if technique not in PTC_LABELS:
            problems.append(DataError(path, f"{where}: technique {technique!r} is not in the PTC mapping table"))
            continue
        if article not in articles:
            article_path = folder / PTC_ARTICLES / f"article{article}.txt"
            if not article_path.is_file():
                problems.append(DataError(path, f"{where}: article file {article_path.name} not found"))
                continue
            articles[article] = article_path.read_text(encoding="utf-8")
        if not 0 <= start < end <= len(articles[article]):
            problems.append(DataError(path, f"{where}: offsets {start}-{end} lie outside article {article} "
                                            f"({len(articles[article])} characters)"))
            continue
        fragments.append(Fragment(article, technique, start, end))
    return fragments, articles, problems


def _sentence_around(text: str, start: int, end: int) -> str:
    """The whole lines (one sentence a line) that the span touches."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end)
    return text[first : len(text) if last < 0 else last].strip()


def scan_ptc(root: Path, context: Literal["sentence", "fragment"] = "sentence",
             merged: Literal["all", "drop"] = "all") -> tuple[list[Meme], list[DataError]]:
    """PTC as memes. context "sentence": the sentence(s) holding each fragment, one example per distinct
    sentence with the union of its fragments' techniques (memes, like sentences, hold several); "fragment":
    the fragment's own words, one example each. merged "all": a merged class marks every technique it
    merges; "drop": its fragments teach nothing."""
    folder = root / PTC_DIR
    fragments, articles, problems = _ptc_fragments(folder)
    examples: dict[tuple, tuple[str, str, list[str]]] = {}  # key -> (article, text, techniques)
    for fragment in fragments:
        techniques = PTC_LABELS[fragment.technique]
        if merged == "drop" and len(techniques) > 1:
            continue
        article = articles[fragment.article]
        if context == "sentence":
            text = _sentence_around(article, fragment.start, fragment.end)
            key: tuple = (fragment.article, text)
        else:
            text = article[fragment.start : fragment.end].strip()
            key = (fragment.article, fragment.start, fragment.end)
        if not text:
            continue
        labels = examples.setdefault(key, (fragment.article, text, []))[2]
        labels += [t for t in techniques if t not in labels]
    memes = [Meme(id=f"ptc/{article}/{n}", text=text, image=None, labels=tuple(labels), source="ptc")
             for n, (article, text, labels) in enumerate(examples.values())]
    return memes, problems


@dataclass(frozen=True)
class Source:
    name: str
    tasks: tuple[str, ...]  # tasks whose label space it labels
    scan: Callable[[Path], tuple[list[Meme], list[DataError]]]  # the examples it trains on
    folder: str
    # Sample weight of one of its memes against one of the task's own, unless a config names another: chosen by
    # 5-fold CV (docs/results.md). PTC's news sentences and Harm-P's politics memes help only when they weigh less.
    weight: float = 1.0
    scan_all: Callable[[Path], tuple[list[Meme], list[DataError]]] | None = None  # every file, for data check


def _scan_semeval2024_all(root: Path) -> tuple[list[Meme], list[DataError]]:
    parts = [scan_semeval2024(root, split) for split in ("train", "val")]
    return [m for memes, _ in parts for m in memes], [p for _, problems in parts for p in problems]


SOURCES = {
    "semeval2024-task4": Source("semeval2024-task4", ("semeval-t6",), scan_semeval2024, SEMEVAL2024_DIR,
                                scan_all=_scan_semeval2024_all),
    "ptc": Source("ptc", ("semeval-t6",), scan_ptc, PTC_DIR, weight=0.3),
    "harm-p": Source("harm-p", ("harm-c-2", "harm-c-3", "harm-c-target"), scan_harm_p, HARM_P_DIR, weight=0.3),
}


def default_weight(name: str) -> float:
    """A source's sample weight when the config names none (1.0 for a source memecat does not know)."""
    return SOURCES[name].weight if name in SOURCES else 1.0


def parse_sources(values: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """`a,b` or ["a", "b,c"] -> ("a", "b", "c"); "none" or empty -> ()."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    names = [name.strip() for item in items for name in item.split(",") if name.strip()]
    return tuple(dict.fromkeys(name for name in names if name != "none"))


def load_sources(task_name: str, names: tuple[str, ...], root: Path) -> list[Meme]:
    """The named sources' memes for a task. A record that cannot be an example of it (an empty label, a harmful
    meme without a target for harm-c-target) is skipped with a line on stderr; a broken source file is an error."""
    memes: list[Meme] = []
    task = get_task(task_name)
    for name in names:
        if name not in SOURCES:
            raise MemecatError(f"unknown extra data source {name!r}; known sources: {', '.join(SOURCES)}")
        source = SOURCES[name]
        if task_name not in source.tasks:
            raise MemecatError(f"source {name} labels {', '.join(source.tasks)}, not task {task_name}")
        found, problems = source.scan(root)
        fatal = [p for p in problems if p.record_id is None]
        if fatal or not found:
            raise fatal[0] if fatal else DataError(root / source.folder, "source holds no examples")
        # A record that cannot supervise this task (a harmful meme without a target) is skipped; harm-c-target
        # learns from harmful memes only.
        kept = [m for m in found if task.keeps(m)]
        unfit = task.label_problems(kept, root / source.folder)
        skipped = {p.record_id for p in unfit}
        memes += [m for m in kept if m.id not in skipped]
        problems += unfit
        for problem in problems:
            print(f"memecat: skipped {problem}", file=sys.stderr)
    return memes
