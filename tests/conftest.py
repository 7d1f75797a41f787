"""Shared fixtures: the real sample, synthetic bins, a SageMaker /opt/ml tree,
and one tiny model trained by the real toolkit per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bincounter.synth import generate

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "abid-sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRAIN_CMD = str(Path(sys.executable).with_name("train"))


@pytest.fixture(scope="session")
def abid_sample() -> Path:
    """The real ABID photos beside the repo (../shared/data/abid-sample)."""
    if not (SHARED_SAMPLE / "metadata").is_dir():
        pytest.skip(f"real ABID sample not found at {SHARED_SAMPLE} (it lives in ../shared, never in the repo)")
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def synthetic_bins(tmp_path_factory) -> Path:
    """200 synthetic 64 px bins in the ABID layout, 40 per count."""
    return generate(tmp_path_factory.mktemp("synth") / "bins", n=200, seed=0, size=64)


def make_opt_ml(base: Path, channels: dict[str, Path], hyperparameters: dict | None = None) -> Path:
    """Copy the /opt/ml fixture tree to ``base``, add channels, code and hyperparameter overrides."""
    import json

    shutil.copytree(FIXTURES / "opt_ml", base, dirs_exist_ok=True)
    for name, src in channels.items():
        (base / "input" / "data").mkdir(parents=True, exist_ok=True)
        (base / "input" / "data" / name).symlink_to(src, target_is_directory=True)
    config = base / "input" / "config"
    if hyperparameters:
        hps = json.loads((config / "hyperparameters.json").read_text())
        hps.update({k: str(v) for k, v in hyperparameters.items()})
        (config / "hyperparameters.json").write_text(json.dumps(hps))
    idc = {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                  "RecordWrapperType": "None"} for name in channels}
    (config / "inputdataconfig.json").write_text(json.dumps(idc))
    shutil.copytree(ROOT / "training-image" / "code", base / "code")
    return base


def run_toolkit_train(base: Path, timeout: int = 600, extra_env: dict | None = None):
    """The sagemaker-training toolkit's own ``train`` command on the tree at ``base``."""
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "train.py",
           "SM_STUDIO_LOCAL_MODE": "True", **(extra_env or {})}
    return subprocess.run([TRAIN_CMD], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, synthetic_bins) -> Path:
    """A tiny resnet18 (64 px) trained by the toolkit once per session: its model dir."""
    base = make_opt_ml(tmp_path_factory.mktemp("opt_ml_session"), {"training": synthetic_bins})
    proc = run_toolkit_train(base)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base / "model"
