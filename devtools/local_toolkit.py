"""The sagemaker-training toolkit's own ``train`` on a local ``/opt/ml`` tree: the one
way the demo, ``make bench-train`` and the tests run training.

The tree comes from ``bincounter.optml.build_tree`` (or a test fixture); this
adds the code SageMaker would put in ``code/`` and runs ``train`` with
``SAGEMAKER_BASE_DIR`` pointing at the tree, as the training image does at /opt/ml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the real ABID photos: beside the repo in ../shared, never in it, or where $ABID_SAMPLE says
# (`make sample` fetches them there from the public bucket)
SAMPLE = Path(os.environ.get("ABID_SAMPLE") or ROOT.parent / "shared" / "data" / "abid-sample")
CODE = ROOT / "training-image" / "code"
TRAIN = str(Path(sys.executable).with_name("train"))


def install_code(base: Path) -> Path:
    """``training-image/code`` into the tree's ``code/``, as SageMaker provides it."""
    shutil.copytree(CODE, base / "code", dirs_exist_ok=True)
    return base


def toolkit_env(base: Path, extra: dict | None = None) -> dict:
    # SM_STUDIO_LOCAL_MODE: the toolkit would otherwise retry DNS for algo-1 for 15 minutes
    return {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "train.py",
            "SM_STUDIO_LOCAL_MODE": "True", "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_train(base: Path, log: Path | None = None, timeout: float | None = None,
              extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``train`` on the tree at ``base``; its output goes to ``log``, else is captured as text."""
    env = toolkit_env(base, extra_env)
    if log is None:
        return subprocess.run([TRAIN], env=env, capture_output=True, text=True, timeout=timeout)
    with open(log, "w") as out:
        return subprocess.run([TRAIN], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
