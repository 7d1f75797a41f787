"""Running the real sagemaker-training toolkit on a temporary /opt/ml tree.

Importable by name from any test folder (pytest's ``pythonpath`` has tests/);
``import conftest`` would find whichever conftest.py pytest loaded last.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from devtools.local_toolkit import SAMPLE as SHARED_SAMPLE
from devtools.local_toolkit import ROOT, install_code, run_train
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# 100 images at 32 px (the ``tiny_bins`` fixture): 80 train (10 steps of 8), 10 validation, 10 test
TINY = {"image-size": "32", "batch-size": "8", "epochs": "2", "lr": "0.01", "log-interval": "1",
        "profile-steps": "0", "num-workers": "0", "checkpoint-steps": "3"}

# the instrumented run: plain cross-entropy at a small LR, so the loss falls over its 20 steps
# (the debugger rules' healthy case); the smdebug hook, torch.profiler on 3 steps and the int8
# twin all on. tiny_bins at 32 px: the hook's tensors stay small (resnet18 at 64 px writes ~600 MB).
INSTRUMENTED = {**TINY, "debug-hook": "true", "lr": "0.001", "augment": "false", "balanced-sampling": "false",
                "label-smoothing": "0", "profile-steps": "3", "quantize": "true", "int8-max-drop": "-100"}


def make_opt_ml(base: Path, channels: dict[str, Path], hyperparameters: dict | None = None) -> Path:
    """Copy the /opt/ml fixture tree to ``base``, add channels, code and hyperparameter overrides.

    The tree's hyperparameters set quantize=false: only the ``quantized_model`` run pays for int8."""
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
    return install_code(base)


def run_toolkit_train(base: Path, timeout: int = 600, extra_env: dict | None = None):
    """The sagemaker-training toolkit's own ``train`` on the tree at ``base``, output captured."""
    return run_train(base, timeout=timeout, extra_env=extra_env)
