"""Both images build from their own contexts with no network and hold exactly the locks."""

from __future__ import annotations

import pytest
from container_helpers import ROOT, canonical, docker, image_config, installed_versions

from devtools.build_context import IMAGES, read_lock

pytestmark = [pytest.mark.container, pytest.mark.slow]

SERVING_LIMIT_MB = 600


def test_training_image_built_offline_carries_the_toolkit_contract(training_image):
    config = image_config(training_image)
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["SAGEMAKER_PROGRAM"] == "train.py"
    # the protobuf runtime is chosen by bincounter.training itself, not by the image
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" not in env
    assert env["PATH"].startswith("/opt/venv/bin:")
    # `docker run IMAGE train`: the PID-1-safe launcher runs the toolkit's train
    assert config["Entrypoint"] == ["python", "-m", "bincounter.training.launch"]
    assert config["Cmd"] == ["train"]
    # built offline (PRETRAINED_WEIGHTS=0), and it says so: orchestrate reads these labels
    assert config["Labels"]["bincounter.pretrained-weights"] == "0"
    assert config["Labels"]["bincounter.pretrained-archs"].split() == ["resnet50", "resnet18"]
    # the toolkit's `train` and our entry script are where SageMaker looks for them
    docker("run", "--rm", "--network", "none", training_image,
           "sh", "-c", "command -v train && test -f /opt/ml/code/train.py")


def test_serving_image_is_small_torch_free_and_sagemaker_shaped(serving_image):
    size_mb = int(docker("image", "inspect", serving_image, "--format", "{{.Size}}").stdout) / 1e6
    print(f"\n{serving_image}: {size_mb:.0f} MB (limit {SERVING_LIMIT_MB})")
    assert size_mb <= SERVING_LIMIT_MB
    config = image_config(serving_image)
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert "/ping" in " ".join(config["Healthcheck"]["Test"])
    assert config["Cmd"] == ["serve"]
    probe = docker("run", "--rm", "--network", "none", "--entrypoint", "python", serving_image, "-c",
                   "import importlib.util as u, bincounter.serving.app; "
                   "print(u.find_spec('torch'), u.find_spec('torchvision'))")
    assert probe.stdout.split() == ["None", "None"]
    # what the engine was sent for it: the serving lock's wheels and ours, no torch or CUDA wheel
    sent = [p.name for p in (ROOT / "build" / "context" / "serving").rglob("*.whl")]
    assert any(w.startswith("onnxruntime-") for w in sent)
    assert not [w for w in sent if w.startswith(("torch", "nvidia", "cuda", "triton"))]


@pytest.mark.parametrize("image_fixture, lock", [("training_image", "training"),
                                                 ("serving_image", "serving")])
def test_library_versions_inside_the_image_equal_the_lock(image_fixture, lock, request):
    image = request.getfixturevalue(image_fixture)
    installed = installed_versions(image)
    pins = read_lock(ROOT / IMAGES[lock].lock)
    assert {"training": "torch", "serving": "onnxruntime"}[lock] in pins, f"{lock}.lock looks truncated"
    expected = {**pins, canonical("bincounter"): installed.get("bincounter")}
    assert installed.get("bincounter"), "our own package is not installed"
    different = {n: (v, installed.get(n)) for n, v in expected.items() if installed.get(n) != v}
    extra = sorted(set(installed) - set(expected))
    assert not different, f"lock vs image: {different}"
    assert not extra, f"installed but not in {lock}.lock: {extra}"


def test_shared_libraries_are_the_same_in_both_images(training_image, serving_image):
    training, serving = installed_versions(training_image), installed_versions(serving_image)
    shared = set(training) & set(serving)
    assert {"numpy", "onnxruntime", "pillow", "protobuf"} <= shared
    assert {n: (training[n], serving[n]) for n in shared if training[n] != serving[n]} == {}
