"""The ONNX Runtime session exactly as the server runs one, and how many images one
run may take. Training measures its models through it too (``bincounter.training.quantize``),
inside the training image, which has no web server: keep this module's imports to
ONNX Runtime and the model card."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from bincounter.modelcard import ONNX_EMBEDDING, ONNX_INPUT, ONNX_OUTPUT, ModelCardError

# Bounds the float32 input tensor of one run (32 x 3 x 224 x 224 = 19 MB).
MAX_RUN_BATCH = 32


def open_session(onnx_path: str | Path, intra_op_threads: int = 1):
    """An ONNX Runtime session with the server's options, its signature checked against the contract."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ModelCardError(f"ONNX Runtime cannot load {onnx_path}: {exc}") from exc
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [ONNX_INPUT] or ONNX_OUTPUT not in outputs:
        raise ModelCardError(f"{onnx_path} has inputs {inputs} and outputs {outputs}; "
                             f"the contract is input {ONNX_INPUT!r}, output {ONNX_OUTPUT!r}")
    return session


def run_batches(session, x: np.ndarray, lock: AbstractContextManager = nullcontext()) -> np.ndarray:
    """``probabilities`` for ``x`` (N x 3 x S x S, N >= 1), MAX_RUN_BATCH images per run,
    each run under ``lock`` (the server's workers share one session between threads)."""
    parts = []
    for start in range(0, len(x), MAX_RUN_BATCH):
        with lock:
            parts.append(session.run([ONNX_OUTPUT], {ONNX_INPUT: x[start:start + MAX_RUN_BATCH]})[0])
    return np.concatenate(parts)


def has_embedding(session) -> bool:
    return ONNX_EMBEDDING in [o.name for o in session.get_outputs()]


def embed_batches(session, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, embedding) for ``x``, MAX_RUN_BATCH images per run: the scoring pass that
    picks bins to label (a graph exported before the embedding output is a ModelCardError)."""
    if not has_embedding(session):
        raise ModelCardError(f"this model's graph has no {ONNX_EMBEDDING!r} output (exported before it "
                             "existed): retrain it, or pick bins with a strategy that needs none")
    parts = [session.run([ONNX_OUTPUT, ONNX_EMBEDDING], {ONNX_INPUT: x[start:start + MAX_RUN_BATCH]})
             for start in range(0, len(x), MAX_RUN_BATCH)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([e for _, e in parts])
