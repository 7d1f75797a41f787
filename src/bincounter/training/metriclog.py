"""The metric line format on stdout, and the regexes that parse it.

SageMaker scans the job's log with ``MetricDefinitions`` (first capture group
= value); HPO's objective must be one of them. orchestrate imports
``METRIC_DEFINITIONS`` from here so the format and the regexes cannot drift.
Torch-free.
"""

from __future__ import annotations

_NUM = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
PREFIX = "#metrics"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": rf"{PREFIX} epoch=\d+ split=train loss={_NUM}"},
    {"Name": "train:accuracy", "Regex": rf"{PREFIX} epoch=\d+ split=train loss=\S+ accuracy={_NUM}"},
    {"Name": "validation:loss", "Regex": rf"{PREFIX} epoch=\d+ split=validation loss={_NUM}"},
    {"Name": "validation:accuracy",
     "Regex": rf"{PREFIX} epoch=\d+ split=validation loss=\S+ accuracy={_NUM}"},
    {"Name": "validation:rmse",
     "Regex": rf"{PREFIX} epoch=\d+ split=validation loss=\S+ accuracy=\S+ rmse={_NUM}"},
    {"Name": "test:loss", "Regex": rf"{PREFIX} epoch=\d+ split=test loss={_NUM}"},
    {"Name": "test:accuracy", "Regex": rf"{PREFIX} epoch=\d+ split=test loss=\S+ accuracy={_NUM}"},
    {"Name": "test:rmse", "Regex": rf"{PREFIX} epoch=\d+ split=test loss=\S+ accuracy=\S+ rmse={_NUM}"},
]
OBJECTIVE_METRIC = "validation:accuracy"


def metric_line(epoch: int, split: str, loss: float, accuracy: float,
                rmse: float | None = None) -> str:
    """``#metrics epoch=2 split=validation loss=1.2345 accuracy=0.4567 rmse=0.9876``"""
    line = f"{PREFIX} epoch={epoch} split={split} loss={loss:.6f} accuracy={accuracy:.6f}"
    return line if rmse is None else f"{line} rmse={rmse:.6f}"
