"""Records of exported encoders, so a later process runs them in ONNX Runtime without PyTorch or transformers.

Beside `<export dir>/<name>/<fingerprint>.onnx` lies `<fingerprint>.json`: the encoder's name as the caller
gave it (registered name, repo id or folder), its fingerprint, width and preprocessing (a text encoder's
tokenizer in `<fingerprint>.tokenizer.json`), the export's size, and a stamp (size and modification time) of
the files its weights were read from. A record is written only after the export matched PyTorch, and is used
only while the export and those files are unchanged; anything else (a new checkpoint in the folder, another
memecat record format) falls back to building the encoder in PyTorch, which writes a new record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from memecat.encoders.frozen import FrozenEncoder, FrozenImageEncoder, FrozenTextEncoder
from memecat.encoders.preprocess import ImagePreprocessing
from memecat.encoders.tokenize import TextTokenizer
from memecat.files import atomic_path, write_json

log = logging.getLogger(__name__)

RECORD_FORMAT = 1


def spec_key(spec: str) -> str:
    """How a record names the encoder: a folder by its absolute path, anything else as given."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


def source_stamp(sources: Iterable[str | Path]) -> str | None:
    """A hash of the name, size and modification time of every file under `sources`; None if one is gone."""
    digest = hashlib.sha256()
    for source in sources:
        root = Path(source)
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = sorted(path for path in root.rglob("*") if path.is_file())
        else:
            return None
        for path in files:
            status = path.stat()
            digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _paths(export_dir: Path, name: str, fingerprint: str) -> tuple[Path, Path, Path]:
    folder = export_dir / name
    return folder / f"{fingerprint}.onnx", folder / f"{fingerprint}.json", folder / f"{fingerprint}.tokenizer.json"


def write_record(export_dir: Path, spec: str, frozen: FrozenEncoder, sources: Iterable[str | Path]) -> None:
    """Record an export that matched PyTorch; an encoder without source files gets no record."""
    sources = [str(Path(source).resolve()) for source in sources]
    stamp = source_stamp(sources) if sources else None
    if stamp is None:
        return
    onnx_path, record_path, tokenizer_path = _paths(Path(export_dir), frozen.name, frozen.digest)
    record = {"format": RECORD_FORMAT, "spec": spec_key(spec), "name": frozen.name, "fingerprint": frozen.digest,
              "dim": frozen.dim, "onnx_bytes": onnx_path.stat().st_size, "sources": sources, "stamp": stamp}
    try:
        if isinstance(frozen, FrozenImageEncoder):
            pre = frozen.preprocessing
            record.update(kind="image", preprocessing={
                "image_size": pre.image_size, "resize_size": pre.resize_size, "mean": list(pre.mean),
                "std": list(pre.std), "resample": int(pre.resample), "repr": repr(pre)})
        else:
            record.update(kind="text", tokenizer=frozen.tokenizer.settings())
            with atomic_path(tokenizer_path) as tmp:
                tmp.write_text(frozen.tokenizer.to_json(), encoding="utf-8")
        write_json(record_path, record)
    except OSError as exc:  # a read-only cache folder: later processes build the encoder in PyTorch
        log.debug("cannot write %s: %s", record_path, exc)


def _frozen_from(record: dict, export_dir: Path) -> FrozenEncoder | None:
    from memecat.encoders.onnx import OnnxRunner

    onnx_path, _, tokenizer_path = _paths(export_dir, record["name"], record["fingerprint"])
    if not onnx_path.is_file() or onnx_path.stat().st_size != record["onnx_bytes"]:
        return None
    if source_stamp(record["sources"]) != record["stamp"]:
        return None
    common = {"name": record["name"], "digest": record["fingerprint"], "dim": int(record["dim"])}
    if record["kind"] == "image":
        settings = record["preprocessing"]
        pre = ImagePreprocessing(settings["image_size"], settings["resize_size"], tuple(settings["mean"]),
                                 tuple(settings["std"]), Image.Resampling(settings["resample"]))
        if repr(pre) != settings["repr"]:
            return None
        return FrozenImageEncoder(**common, run=OnnxRunner(onnx_path), preprocessing=pre)
    tokenizer = TextTokenizer.from_json(tokenizer_path.read_text(encoding="utf-8"), **record["tokenizer"])
    return FrozenTextEncoder(**common, run=OnnxRunner(onnx_path), tokenizer=tokenizer)


def find_export(export_dir: Path, kind: str, spec: str) -> FrozenEncoder | None:
    """The exported encoder `spec` names, ready to run in ONNX Runtime; None when there is no valid record."""
    export_dir, key = Path(export_dir), spec_key(spec)
    if not export_dir.is_dir():
        return None
    for folder in os.scandir(export_dir):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder.path):
            if not entry.name.endswith(".json") or entry.name.endswith(".tokenizer.json"):
                continue
            try:
                record = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                if record.get("format") != RECORD_FORMAT or record.get("kind") != kind or record.get("spec") != key:
                    continue
                frozen = _frozen_from(record, export_dir)
            except Exception as exc:  # noqa: BLE001 - a damaged record or export only costs the PyTorch path
                log.debug("ignoring export record %s: %s", entry.path, exc)
                continue
            if frozen is not None:
                return frozen
    return None
