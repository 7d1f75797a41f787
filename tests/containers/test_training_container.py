"""``docker run IMAGE train`` on a mounted /opt/ml tree, as SageMaker runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from container_helpers import docker

from bincounter.modelcard import ModelCard
from bincounter.optml import build_tree

pytestmark = [pytest.mark.container, pytest.mark.slow]

TINY = {"arch": "resnet18", "image-size": "64", "epochs": "1", "batch-size": "16",
        "num-workers": "0", "pretrained": "false", "seed": "0"}


def run_train(image: str, base: Path) -> tuple[int, str]:
    """SageMaker mounts input, model, output and checkpoints, never /opt/ml/code: the
    image's own code runs. No network, like a job with network isolation."""
    mounts = [("input", "ro"), ("model", "rw"), ("output", "rw"), ("checkpoints", "rw")]
    volumes = [a for d, mode in mounts for a in ("-v", f"{base / d}:/opt/ml/{d}:{mode}")]
    proc = docker("run", "--rm", "--network", "none", "--hostname", "algo-1",
                  "--add-host", "algo-1:127.0.0.1", *volumes, image, "train",
                  timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_train_in_the_image_writes_the_model_and_success(training_image, synthetic_bins, tmp_path):
    base = build_tree(tmp_path / "opt_ml", {"training": synthetic_bins}, TINY, copy=True)
    code, log = run_train(training_image, base)
    assert code == 0, log[-4000:]
    model = base / "model"
    assert {"model.onnx", "model.json", "model.pth"} <= {p.name for p in model.iterdir()}
    assert (base / "output" / "success").exists()
    assert not (base / "output" / "failure").exists()
    card = ModelCard.read(model)
    assert card.classes == [1, 2, 3, 4, 5]
    assert "#metrics epoch=1 split=validation" in log


def test_pretrained_in_an_offline_built_image_fails_with_the_reason(training_image, synthetic_bins,
                                                                   tmp_path):
    base = build_tree(tmp_path / "opt_ml", {"training": synthetic_bins},
                      {**TINY, "pretrained": "true"}, copy=True)
    code, log = run_train(training_image, base)
    assert code != 0
    reason = (base / "output" / "failure").read_text()
    assert "ImageNet weights" in reason and "pretrained=false" in reason, reason
    assert not (base / "model" / "model.onnx").exists()
