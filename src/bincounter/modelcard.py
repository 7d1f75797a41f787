"""The ``model.json`` contract: everything a server needs to serve a model.

Written by training next to ``model.onnx``; read by serving. The ONNX graph
takes ``input`` (float32, N x 3 x S x S, preprocessed by
``bincounter.preprocess``) and returns calibrated ``probabilities``
(N x classes, the temperature already inside the graph), so a server needs no
knowledge of the training head (softmax or ordinal).

``verification`` holds the verdict thresholds (``bincounter.verification``'s
``VerdictRule``: a pair per expected count since schema 3, one pair before)
and, for a model trained to targets, the operating point they were chosen
for: the targets, the guarantee, the method, notes, and the rates measured on
the calibration and test splits, each with its n. ``calibration`` records the
temperature and what it did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bincounter.labels import CountRange
from bincounter.preprocess import PreprocessSpec
from bincounter.verification import VerdictRule

SCHEMA_VERSION = 3
# version 1 (before calibration and operating points) and 2 (one pair of thresholds for every
# expected count) still serve, with their thresholds; a server before 3 refuses a per-count card
READABLE_VERSIONS = (1, 2, 3)
MODEL_JSON = "model.json"
MODEL_ONNX = "model.onnx"
# the static int8 twin training writes beside model.onnx (bincounter.training.quantize)
MODEL_INT8_ONNX = "model.int8.onnx"
MODEL_PTH = "model.pth"
ONNX_INPUT = "input"
ONNX_OUTPUT = "probabilities"
# a second output: the penultimate features, projected to EMBEDDING_DIM and unit length (what
# `review export --purpose training` clusters); graphs exported before it lack it
ONNX_EMBEDDING = "embedding"
EMBEDDING_DIM = 64


class ModelCardError(ValueError):
    """model.json is missing, unreadable or does not follow the schema."""


@dataclass(frozen=True)
class ModelCard:
    classes: list[int]
    preprocess: PreprocessSpec
    arch: str
    verification: VerdictRule = field(default_factory=VerdictRule)
    # targets, guarantee, method, notes, measured rates; empty for thresholds nobody measured
    operating_point: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    onnx_file: str = MODEL_ONNX
    metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    # the int8 twin: how it was made, fp32 against int8 on the test split, and why
    # ``onnx_file`` names the one it names (empty when training did not quantize)
    quantization: dict = field(default_factory=dict)
    # the monitor's reference distributions: the file beside model.json that holds them
    # (bincounter.monitoring.reference), the split and its n; empty for cards before it
    monitor: dict = field(default_factory=dict)

    @property
    def count_range(self) -> CountRange:
        return CountRange(min(self.classes), max(self.classes))

    def served_test_point(self) -> dict | None:
        """The test split's verdict rates of the graph ``onnx_file`` names: the int8 twin's
        (measured at the same thresholds) when it is served, else the operating point's."""
        if self.onnx_file == MODEL_INT8_ONNX and self.quantization.get("test"):
            return self.quantization["test"]["int8"]["verification"]
        return (self.operating_point.get("measured") or {}).get("test")

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "classes": list(self.classes),
            "arch": self.arch,
            "preprocess": self.preprocess.to_dict(),
            "onnx": {"file": self.onnx_file, "input": ONNX_INPUT, "output": ONNX_OUTPUT},
            "verification": {**self.verification.to_dict(), **self.operating_point},
            "calibration": self.calibration,
            "metrics": self.metrics,
            "versions": self.versions,
            "training": self.training,
            "quantization": self.quantization,
            "monitor": self.monitor,
        }

    def write(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / MODEL_JSON
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        if d.get("schema_version") not in READABLE_VERSIONS:
            raise ModelCardError(f"unsupported model.json schema_version {d.get('schema_version')!r}")
        try:
            classes = [int(c) for c in d["classes"]]
            if classes != list(range(classes[0], classes[0] + len(classes))):
                raise ModelCardError(f"classes must be consecutive counts: {classes}")
            verification = dict(d.get("verification", {}))
            thresholds = VerdictRule.from_dict(verification)
            for key in ("match_at", "mismatch_at", "per_count"):
                verification.pop(key, None)
            unknown = sorted(set(thresholds.by_count) - set(classes))
            if unknown:
                raise ModelCardError(f"verification.per_count names counts {unknown} outside classes {classes}")
            return cls(classes=classes, preprocess=PreprocessSpec.from_dict(d["preprocess"]),
                       arch=str(d["arch"]), verification=thresholds, operating_point=verification,
                       calibration=d.get("calibration", {}),
                       onnx_file=d.get("onnx", {}).get("file", MODEL_ONNX),
                       metrics=d.get("metrics", {}), versions=d.get("versions", {}),
                       training=d.get("training", {}), quantization=d.get("quantization", {}),
                       monitor=d.get("monitor", {}))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            if isinstance(exc, ModelCardError):
                raise
            raise ModelCardError(f"model.json does not follow the schema: {exc!r}") from exc

    @classmethod
    def read(cls, model_dir: str | Path) -> "ModelCard":
        path = Path(model_dir) / MODEL_JSON
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelCardError(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(doc)
