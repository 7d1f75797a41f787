"""ONNX export, verified against the torch model on a real batch at export time."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from bincounter.modelcard import EMBEDDING_DIM, ONNX_EMBEDDING, ONNX_INPUT, ONNX_OUTPUT

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


class ExportVerificationError(RuntimeError):
    """The exported ONNX model does not reproduce the torch model's probabilities."""


def split_head(model: nn.Module) -> tuple[nn.Module, nn.Module, int]:
    """(body, head, features): the model up to its count head, that head (``models`` puts it at
    ``fc`` or ``classifier[-1]``; the ordinal head replaces ``fc``), and how many features the
    head reads. Body and head share the model's weights."""
    body = copy.copy(model)
    body._modules = dict(model._modules)  # a shallow copy shares the module dict; this one must not
    if isinstance(getattr(model, "fc", None), nn.Module):
        head, body.fc = model.fc, nn.Identity()
    else:
        head = model.classifier[-1]
        body.classifier = nn.Sequential(*list(model.classifier)[:-1])
    first = next(m for m in head.modules() if isinstance(m, nn.Linear))
    return body, head, first.in_features


def projection(features: int, dim: int = EMBEDDING_DIM, seed: int = 0) -> torch.Tensor:
    """A fixed Gaussian random projection ``features -> dim``: distances between bins survive it
    closely (Johnson-Lindenstrauss), and an embedding stays 256 bytes whatever the architecture."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(features, dim, generator=g) / dim ** 0.5


class WithProbabilities(nn.Module):
    """The served graph: raw model, its outputs divided by the calibration temperature, then
    the head's function to class probabilities; beside them the bin's embedding (the features
    the head reads, projected and of unit length) for picking whom to label."""

    def __init__(self, model: nn.Module,
                 to_probabilities: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 temperature: float = 1.0):
        super().__init__()
        self.body, self.head, features = split_head(model)
        self.to_probabilities = to_probabilities or (lambda z: torch.softmax(z, dim=1))
        self.temperature = float(temperature)
        self.register_buffer("projection", projection(features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        e = features @ self.projection
        # unit length without F.normalize, whose Expand onnxruntime's shape inference for int8 cannot read
        embedding = e / torch.sqrt((e * e).sum(dim=1, keepdim=True) + 1e-12)
        return self.to_probabilities(self.head(features) / self.temperature), embedding


def export_onnx(model: nn.Module, batch: torch.Tensor, path: str | Path,
                to_probabilities: Callable[[torch.Tensor], torch.Tensor] | None = None,
                temperature: float = 1.0) -> float:
    """Write ``path`` with a dynamic batch axis; return the max abs difference
    between ONNX Runtime's and torch's probabilities on ``batch``."""
    import onnxruntime as ort

    wrapped = WithProbabilities(model, to_probabilities, temperature).eval().cpu()
    batch = batch.detach().cpu().float()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's chatter is not ours to act on
        torch.onnx.export(wrapped, (batch,), str(path), input_names=[ONNX_INPUT],
                          output_names=[ONNX_OUTPUT, ONNX_EMBEDDING], dynamo=True, external_data=False,
                          dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        expected = wrapped(batch)[0].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([ONNX_OUTPUT], {ONNX_INPUT: batch.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= PARITY_TOLERANCE:
        raise ExportVerificationError(
            f"ONNX model differs from torch by {diff:.2e} (> {PARITY_TOLERANCE}) on a real batch")
    log.info("exported %s; ONNX vs torch max abs diff %.2e on %d images", path, diff, len(batch))
    return diff
