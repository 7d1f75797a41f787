"""``make demo``: the main job on the embedded default data, end to end.

Synthetic bins -> a SageMaker-shaped /opt/ml tree -> the sagemaker-training
toolkit's own ``train`` command runs training-image/code/train.py -> the
evaluation table. Everything lands in ./demo (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bincounter.optml import build_tree
from bincounter.synth import generate

ROOT = Path(__file__).resolve().parents[1]
HYPERPARAMETERS = {"arch": "resnet18", "image-size": "64", "epochs": "4", "batch-size": "32",
                   "lr": "0.02", "pretrained": "false", "num-workers": "1", "seed": "0"}


def train_with_toolkit(base: Path) -> None:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "train.py",
           "SM_STUDIO_LOCAL_MODE": "True"}
    train = Path(sys.executable).with_name("train")
    subprocess.run([str(train)], env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "demo"))
    p.add_argument("--n", type=int, default=400, help="synthetic bins")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    data = generate(out / "data", n=a.n, seed=0, size=128)
    base = build_tree(out / "opt_ml", {"training": data}, HYPERPARAMETERS)
    shutil.copytree(ROOT / "training-image" / "code", base / "code", dirs_exist_ok=True)
    train_with_toolkit(base)
    print((base / "output" / "data" / "evaluation.md").read_text())
    print(f"model: {base / 'model'}  report: {base / 'output' / 'data'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
