"""ONNX export, verified against the torch model on a real batch at export time."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from bincounter.modelcard import ONNX_INPUT, ONNX_OUTPUT

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


class ExportVerificationError(RuntimeError):
    """The exported ONNX model does not reproduce the torch model's probabilities."""


class WithProbabilities(nn.Module):
    """The served graph: raw model, its outputs divided by the calibration
    temperature, then the head's function to class probabilities."""

    def __init__(self, model: nn.Module,
                 to_probabilities: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 temperature: float = 1.0):
        super().__init__()
        self.model = model
        self.to_probabilities = to_probabilities or (lambda z: torch.softmax(z, dim=1))
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_probabilities(self.model(x) / self.temperature)


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
                          output_names=[ONNX_OUTPUT], dynamo=True, external_data=False,
                          dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        expected = wrapped(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([ONNX_OUTPUT], {ONNX_INPUT: batch.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= PARITY_TOLERANCE:
        raise ExportVerificationError(
            f"ONNX model differs from torch by {diff:.2e} (> {PARITY_TOLERANCE}) on a real batch")
    log.info("exported %s; ONNX vs torch max abs diff %.2e on %d images", path, diff, len(batch))
    return diff
