"""``docker run IMAGE train`` on a mounted /opt/ml tree, as SageMaker runs it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from container_helpers import docker

from bincounter.modelcard import ModelCard
from bincounter.optml import build_tree

pytestmark = [pytest.mark.container, pytest.mark.slow]

TINY = {"arch": "resnet18", "image-size": "64", "epochs": "1", "batch-size": "16",
        "num-workers": "0", "pretrained": "false", "seed": "0"}


def job_args(base: Path) -> list[str]:
    """SageMaker mounts input, model, output and checkpoints, never /opt/ml/code: the
    image's own code runs. No network, like a job with network isolation."""
    mounts = [("input", "ro"), ("model", "rw"), ("output", "rw"), ("checkpoints", "rw")]
    return ["--network", "none", "--hostname", "algo-1", "--add-host", "algo-1:127.0.0.1",
            *[a for d, mode in mounts for a in ("-v", f"{base / d}:/opt/ml/{d}:{mode}")]]


def run_train(image: str, base: Path) -> tuple[int, str]:
    proc = docker("run", "--rm", *job_args(base), image, "train", timeout=900, check=False)
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
    # quantize defaults to true: the image has what ONNX Runtime's quantizer needs
    assert (model / "model.int8.onnx").is_file() and "test" in card.quantization, card.quantization


def test_pretrained_in_an_offline_built_image_fails_with_the_reason(training_image, synthetic_bins,
                                                                   tmp_path):
    base = build_tree(tmp_path / "opt_ml", {"training": synthetic_bins},
                      {**TINY, "pretrained": "true"}, copy=True)
    code, log = run_train(training_image, base)
    assert code != 0
    reason = (base / "output" / "failure").read_text()
    assert "ImageNet weights" in reason and "pretrained=false" in reason, reason
    assert not (base / "model" / "model.onnx").exists()


def test_docker_stop_checkpoints_and_fails_with_the_reason(training_image, synthetic_bins, tmp_path):
    """SageMaker stops a job (spot, StopTrainingJob) with SIGTERM to PID 1, SIGKILL 120 s later."""
    base = build_tree(tmp_path / "opt_ml", {"training": synthetic_bins}, {**TINY, "epochs": "50"}, copy=True)
    cid = docker("run", "-d", *job_args(base), training_image, "train").stdout.strip()
    try:
        deadline = time.monotonic() + 300
        while "#metrics epoch=1 split=train" not in docker("logs", cid).stdout:
            assert time.monotonic() < deadline, docker("logs", cid).stdout[-3000:]
            time.sleep(0.5)
        start = time.monotonic()
        docker("stop", "--time", "110", cid, timeout=130)
        stopped = time.monotonic() - start
        code = int(docker("inspect", cid, "--format", "{{.State.ExitCode}}").stdout)
        log = docker("logs", cid)
        print(f"\nstopped {stopped:.1f} s after SIGTERM, exit {code}")
        # train.py exits 143 after saving; the toolkit reports any failure as exit 1
        assert code != 0, log.stdout[-2000:] + log.stderr[-2000:]
        assert stopped < 110, "SIGTERM did not stop training: docker stop had to SIGKILL it"
        reason = (base / "output" / "failure").read_text()
        assert "stopped by SIGTERM" in reason, reason
        assert list((base / "checkpoints").iterdir()), "no checkpoint saved on SIGTERM"
    finally:
        docker("rm", "-f", cid, check=False)
