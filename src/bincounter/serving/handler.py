"""The model handler: load / preprocess / predict / postprocess (TorchServe's shape).

Torch-free: ONNX Runtime runs the graph ``model.json`` names (``model.onnx``,
or training's int8 twin when its answers held); ``model.json`` (the
``bincounter.modelcard`` contract) gives classes, preprocessing and the
verification thresholds. Usable without any web server.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bincounter.modelcard import ModelCard, ModelCardError
from bincounter.verification import VerdictRule
from bincounter.preprocess import (DEFAULT_MAX_PIXELS, ImageDecodeError, ImageTooLargeError,
                                   preprocess_bytes)
from bincounter.serving.errors import BadRequest, error_message, status_for
from bincounter.serving.session import MAX_RUN_BATCH, open_session, run_batches

log = logging.getLogger(__name__)
# What one bad record may cost in batch mode: its own answer, nothing else.
_RECORD_ERRORS = (BadRequest, ImageDecodeError, ImageTooLargeError)


@dataclass(frozen=True)
class Instance:
    """One image to count, optionally the quantity the caller expects, and the caller's
    id for it (echoed on its answer); ``where`` names the record in error reasons."""
    image: bytes
    expected_quantity: int | None = None
    id: str | int | None = None
    where: str = ""


@dataclass(frozen=True)
class Rejected:
    """A batch record that could not be read into an Instance (bad JSON, no image, bad
    base64, ...): its answer is an error record, with whatever id and quantity it had."""
    error: Exception
    id: str | int | None = None
    expected_quantity: int | None = None


def error_record(exc: Exception, record_id=None, expected_quantity: int | None = None) -> dict:
    """Batch mode's answer for a record that cannot be counted: the reason and the status a
    real-time call would have got, beside the record's id and expected quantity."""
    status = status_for(exc)
    out = {"error": error_message(exc, status), "status": status}
    if record_id is not None:
        out["id"] = record_id
    if expected_quantity is not None:
        out["expected_quantity"] = expected_quantity
    return out


class ModelHandler:
    def __init__(self, card: ModelCard, session, thresholds: VerdictRule,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.card = card
        self.session = session
        self.thresholds = thresholds
        self.max_pixels = max_pixels
        self.classes = list(card.classes)
        # One inference at a time per worker: with gthread workers the other
        # threads keep decoding and answering /ping instead of oversubscribing cores.
        self._run_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str | Path, thresholds: VerdictRule | None = None,
             intra_op_threads: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS) -> "ModelHandler":
        """Read model.json, open the ONNX file it names, check its signature and run one warm-up batch."""
        model_dir = Path(model_dir)
        card = ModelCard.read(model_dir)
        onnx_path = model_dir / card.onnx_file
        if not onnx_path.is_file():
            raise ModelCardError(f"model.json names {card.onnx_file}, which is not in {model_dir}")
        handler = cls(card, open_session(onnx_path, intra_op_threads), thresholds or card.verification,
                      max_pixels)
        size = card.preprocess.image_size
        probs = handler.predict(np.zeros((1, 3, size, size), np.float32))
        if probs.shape != (1, len(handler.classes)):
            raise ModelCardError(f"{onnx_path} returns shape {probs.shape[1:]} per image but "
                                 f"model.json lists {len(handler.classes)} classes")
        log.info("loaded %s (%s, %d px, classes %s, thresholds %s)", onnx_path, card.arch, size,
                 handler.classes, handler.thresholds.describe())
        return handler

    def check(self, instances: list[Instance]) -> None:
        """Reject bad expected quantities before any image is decoded."""
        for i, inst in enumerate(instances):
            self._check_quantity(inst.expected_quantity, f"instance {i}")

    def _check_quantity(self, q: int | None, where: str) -> None:
        if q is not None and q not in self.classes:
            raise BadRequest(f"{where}: expected_quantity {q} is outside the counts this "
                             f"model knows ({self.classes[0]}..{self.classes[-1]})")

    def preprocess(self, instances: list[Instance]) -> np.ndarray:
        """Image bytes -> float32 N x 3 x S x S, through the same function training used."""
        one = len(instances) == 1  # a lone image's error needs no location
        return np.stack([self._decode(inst.image, None if one else inst.where or f"instance {i}")
                         for i, inst in enumerate(instances)])

    def _decode(self, image: bytes, where: str | None) -> np.ndarray:
        """One image through the shared preprocessing; its errors name ``where``."""
        try:
            return preprocess_bytes(image, self.card.preprocess, self.max_pixels)
        except (ImageDecodeError, ImageTooLargeError) as exc:
            if where is None:
                raise
            raise type(exc)(f"{where}: {exc}") from exc

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x S x S -> N x classes probabilities."""
        return run_batches(self.session, batch, self._run_lock)

    def postprocess(self, probs: np.ndarray, instances: list[Instance]) -> list[dict]:
        counts = np.asarray(self.classes, np.float64)
        out = []
        for p, inst in zip(probs.astype(np.float64), instances):
            best = int(p.argmax())
            pred = {"id": inst.id} if inst.id is not None else {}
            pred["count"] = self.classes[best]
            pred["probabilities"] = {str(c): float(v) for c, v in zip(self.classes, p)}
            pred["expected_count"] = float(p @ counts)
            pred["confidence"] = float(p[best])
            if inst.expected_quantity is not None:
                match = float(p[self.classes.index(inst.expected_quantity)])
                pred["verification"] = {"expected_quantity": inst.expected_quantity,
                                        "match_probability": match,
                                        "verdict": self.thresholds.verdict(match, inst.expected_quantity)}
            out.append(pred)
        return out

    def handle(self, instances: list[Instance]) -> list[dict]:
        """Real time: the first bad instance fails the whole request (a 4xx)."""
        self.check(instances)
        return self.postprocess(self.predict(self.preprocess(instances)), instances)

    def handle_records(self, items: list[Instance | Rejected]) -> list[dict]:
        """Batch mode: one answer per record, in order; a record that cannot be counted gets
        an error record and the rest of the mini-batch is counted. Images are decoded and
        run MAX_RUN_BATCH at a time, so a payload of many small images stays small in memory."""
        answers: list[dict | None] = [None] * len(items)
        ready: list[tuple[int, Instance, np.ndarray]] = []

        def run() -> None:
            probs = self.predict(np.stack([array for _, _, array in ready]))
            for (i, inst, _), pred in zip(ready, self.postprocess(probs, [inst for _, inst, _ in ready])):
                answers[i] = pred
            ready.clear()

        for i, item in enumerate(items):
            if isinstance(item, Rejected):
                answers[i] = error_record(item.error, item.id, item.expected_quantity)
                continue
            try:
                self._check_quantity(item.expected_quantity, item.where or "record")
                array = self._decode(item.image, item.where or None)
            except _RECORD_ERRORS as exc:
                answers[i] = error_record(exc, item.id, item.expected_quantity)
                continue
            ready.append((i, item, array))
            if len(ready) == MAX_RUN_BATCH:
                run()
        if ready:
            run()
        return answers
