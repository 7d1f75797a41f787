"""Shared by the training-at-scale tests: small synthetic channels and toolkit runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bincounter.synth import generate
from devtools.local_serve import free_port
from toolkit_helpers import TRAIN_CMD, make_opt_ml, run_toolkit_train

# 100 images at 32 px: 80 train (10 steps of 8), 10 validation, 10 test
TINY = {"image-size": "32", "batch-size": "8", "epochs": "2", "lr": "0.01", "log-interval": "1",
        "profile-steps": "0", "num-workers": "0", "checkpoint-steps": "3"}


def toolkit_env(base: Path, extra: dict | None = None) -> dict:
    return {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "train.py",
            "SM_STUDIO_LOCAL_MODE": "True", "PYTHONUNBUFFERED": "1", **(extra or {})}


def start_toolkit(base: Path, extra_env: dict | None = None, launcher: bool = False) -> subprocess.Popen:
    """The toolkit's ``train`` (optionally behind our PID-1-safe launcher), output piped."""
    cmd = [sys.executable, "-m", "bincounter.training.launch", TRAIN_CMD] if launcher else [TRAIN_CMD]
    return subprocess.Popen(cmd, env=toolkit_env(base, extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def write_config(base: Path, name: str, doc: dict) -> None:
    (base / "input" / "config" / name).write_text(json.dumps(doc))


def final_digest(log: str) -> str:
    found = re.findall(r"final weights sha256 (\w+)", log)
    assert len(found) == 1, log[-3000:]
    return found[0]


@pytest.fixture(scope="session")
def tiny_bins(tmp_path_factory) -> Path:
    """100 synthetic 32 px bins, 20 per count."""
    return generate(tmp_path_factory.mktemp("tiny") / "bins", n=100, seed=0, size=32)


@pytest.fixture(scope="session")
def other_tiny_bins(tmp_path_factory) -> Path:
    """A different 100: what a second host sees when the channel is sharded by S3 key."""
    return generate(tmp_path_factory.mktemp("tiny2") / "bins", n=100, seed=1, size=32)


__all__ = ["tiny_bins", "other_tiny_bins", "TINY", "make_opt_ml", "run_toolkit_train", "start_toolkit", "free_port", "write_config",
           "final_digest", "toolkit_env"]
