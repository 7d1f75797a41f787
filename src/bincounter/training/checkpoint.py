"""Checkpoints: a dict saved atomically, and the newest complete one found again.

Written to ``/opt/ml/checkpoints``, which SageMaker syncs to S3 and restores
when a managed-spot job restarts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)
PATTERN = "checkpoint-*.pt"


def save_checkpoint(state: dict, directory: Path, step: int) -> Path:
    """Write then rename, so a kill mid-write never leaves a truncated checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"checkpoint-{step:09d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_latest(directory: Path) -> tuple[dict, Path] | None:
    """The newest checkpoint that loads; corrupt ones are skipped with a warning."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob(PATTERN), reverse=True):
        try:
            return torch.load(path, map_location="cpu", weights_only=False), path
        except Exception as exc:  # truncated or foreign file: fall back to an older one
            log.warning("skipped corrupt checkpoint %s: %s", path, exc)
    return None


def prune(directory: Path, keep: int = 2) -> None:
    for path in sorted(directory.glob(PATTERN), reverse=True)[keep:]:
        path.unlink(missing_ok=True)


def rng_states() -> dict:
    """Every RNG a run draws from, to put in a checkpoint."""
    import random

    import numpy as np

    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    import random

    import numpy as np

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
