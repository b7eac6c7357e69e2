"""Run frozen PyTorch encoders through ONNX Runtime: the same weights and features (to ~1e-5), faster on CPU.

EfficientNet's depthwise convolutions run about 5x faster in ONNX Runtime than in PyTorch on two cores,
which is most of the time `predict` spends on a new meme. Each encoder is exported once per fingerprint
into the feature cache folder and checked against PyTorch on inputs of another shape before it is used.
If export or the check fails, or MEMECAT_RUNTIME=torch, the encoder runs in PyTorch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from memecat.encoders.base import Encoder, ImageEncoder, ImageFeatures, TextEncoder
from memecat.encoders.frozen import FrozenEncoder, FrozenImageEncoder, FrozenTextEncoder, Run
from memecat.encoders.onnx import OnnxRunner
from memecat.files import atomic_path

log = logging.getLogger(__name__)

_TOLERANCE = 1e-3  # features are stored in float16 (relative precision ~1e-3), so this changes nothing stored


class _PlainOutputs(nn.Module):
    """The encoder's feature tensors as a plain tuple, which is what the exporter traces."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(*inputs)
        return (features.grid, features.pooled) if isinstance(features, ImageFeatures) else (
            features.tokens, features.pooled)


def _example_inputs(encoder: Encoder, batch: int, length: int) -> dict[str, torch.Tensor]:
    if isinstance(encoder, ImageEncoder):
        size = encoder.image_size
        return {"pixels": torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))}
    texts = [" ".join(["word"] * (length - row)) for row in range(batch)]
    return encoder.tokenize(texts)


def _dynamic_axes(encoder: Encoder) -> dict[str, dict[int, str]]:
    if isinstance(encoder, ImageEncoder):
        return {"pixels": {0: "batch"}, "grid": {0: "batch"}, "pooled": {0: "batch"}}
    return {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
            "tokens": {0: "batch", 1: "length"}, "pooled": {0: "batch"}}


def _export(encoder: Encoder, path: Path) -> None:
    example = _example_inputs(encoder, batch=2, length=6)
    outputs = ["grid", "pooled"] if isinstance(encoder, ImageEncoder) else ["tokens", "pooled"]
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about shapes treated as constants
        torch.onnx.export(_PlainOutputs(encoder).eval(), tuple(example.values()), str(tmp), dynamo=False,
                          input_names=list(example), output_names=outputs,
                          dynamic_axes=_dynamic_axes(encoder), opset_version=17)


def export_path(encoder: Encoder, export_dir: Path) -> Path:
    return Path(export_dir) / encoder.name / f"{encoder.fingerprint()}.onnx"


def _onnx_runner(encoder: Encoder, export_dir: Path) -> Run:
    path = export_path(encoder, export_dir)
    if not path.exists():
        _export(encoder, path)
    run = OnnxRunner(path, threads=torch.get_num_threads())
    # Check on a batch size and length other than the traced ones, so a shape baked into the graph shows.
    check = _example_inputs(encoder, batch=3, length=9)
    with torch.inference_mode():
        expected = _PlainOutputs(encoder)(*check.values())
    got = run(*(value.numpy() for value in check.values()))
    for want, have in zip(expected, got):
        if want.shape != have.shape or not np.allclose(have, want.numpy(), atol=_TOLERANCE, rtol=_TOLERANCE):
            raise ValueError("ONNX Runtime output differs from PyTorch")
    return run


def _torch_runner(encoder: Encoder) -> Run:
    def run(*inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            features = encoder(*(torch.from_numpy(np.ascontiguousarray(value)) for value in inputs))
        first = features.grid if isinstance(features, ImageFeatures) else features.tokens
        return first.float().numpy(), features.pooled.float().numpy()

    return run


def frozen_runner(encoder: Encoder, export_dir: Path, runtime: str = "onnx") -> tuple[Run, bool]:
    """A function from the encoder's inputs (numpy) to its features (numpy) with frozen weights, and whether it
    runs in ONNX Runtime: the export in `export_dir` (made on first use), else PyTorch."""
    if runtime == "onnx":
        try:
            return _onnx_runner(encoder, Path(export_dir)), True
        except Exception as exc:  # noqa: BLE001 - any exporter or runtime failure keeps the PyTorch path
            log.warning("%s runs in PyTorch: ONNX Runtime unavailable (%s)", encoder.name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return _torch_runner(encoder), False


def frozen_encoder(encoder: Encoder, export_dir: Path, runtime: str = "onnx", spec: str | None = None,
                   sources: Iterable[str | Path] = ()) -> FrozenEncoder:
    """The feature path's view of a PyTorch encoder. With the name the caller knows it by (`spec`) and the files
    its weights came from, a working ONNX export is recorded for later processes to use without PyTorch."""
    from memecat.encoders.exports import write_record

    run, exported = frozen_runner(encoder, export_dir, runtime)
    common = {"name": encoder.name, "digest": encoder.fingerprint(), "dim": encoder.dim, "run": run}
    if isinstance(encoder, ImageEncoder):
        frozen: FrozenEncoder = FrozenImageEncoder(**common, preprocessing=encoder.preprocessing)
    else:
        assert isinstance(encoder, TextEncoder)
        frozen = FrozenTextEncoder(**common, tokenizer=encoder.text_tokenizer)
    if exported and spec is not None:
        write_record(Path(export_dir), spec, frozen, sources)
    return frozen
