"""Why a run stopped: the failures a user can act on, and the exit code for each.

An expected failure (bad hyperparameters or data, missing weights, a diverged
run) is logged as one line and its reason goes to ``output/failure``
(``environment.write_failure``). Anything else is a bug, ours or the
platform's: the same, plus its traceback in the log.
"""

from __future__ import annotations

import logging

from bincounter.metadata import NoUsableDataError
from bincounter.reviews import LabelsError
from bincounter.training.hyperparameters import HyperparameterError
from bincounter.training.spot import Interrupted

log = logging.getLogger("train")
# 128 + SIGTERM: the code of a run killed by the stop signal, though this one saved its state
INTERRUPTED_EXIT = 143


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but are not on disk (no download at run time)."""


class TrainingDiverged(RuntimeError):
    """The trained weights hold NaN or infinity: there is no model worth saving."""


EXPECTED = (HyperparameterError, NoUsableDataError, LabelsError, PretrainedWeightsUnavailable, TrainingDiverged)


def classify(exc: BaseException) -> tuple[int, str]:
    """Exit code and ``output/failure`` reason for ``exc``; call it in its ``except``."""
    if isinstance(exc, Interrupted):
        log.error("training interrupted: %s", exc)
        return INTERRUPTED_EXIT, f"Interrupted: {exc}"
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, EXPECTED):
        log.error("training failed: %s", reason)
    else:
        log.exception("training failed unexpectedly")
    return 1, reason
