"""Shared fixtures: the real sample, synthetic bins, a SageMaker /opt/ml tree,
one tiny model trained by the real toolkit per test session, and a moto server
with the AWS environment pointing at it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import urllib.request
from pathlib import Path

# first: it chooses the protobuf runtime smdebug needs, before a test module's onnx import
import bincounter.training  # noqa: F401
import boto3
import pytest

from aws_helpers import REGION, record
from bincounter.synth import generate
from made_once import made_once
from toolkit_helpers import INSTRUMENTED, SHARED_SAMPLE, TINY, make_opt_ml, run_toolkit_train

# devtools.ci_verdict: each test's markers in the JUnit report, for .ci/run's verdict on skipped
# tests; tiers: a test that trains, serves or uses moto must be marked so (make test-fast)
pytest_plugins = ["devtools.ci_verdict", "tiers"]


@pytest.fixture(scope="session")
def abid_sample() -> Path:
    """The real ABID photos beside the repo (../shared/data/abid-sample, or $ABID_SAMPLE)."""
    if not (SHARED_SAMPLE / "metadata").is_dir():
        pytest.skip(f"real ABID sample not found at {SHARED_SAMPLE} (it lives in ../shared, never in the repo; "
                    "`make sample` fetches it from the public bucket, ABID_SAMPLE=DIR puts it elsewhere)")
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def synthetic_bins(tmp_path_factory) -> Path:
    """200 synthetic 64 px bins in the ABID layout, 40 per count."""
    return made_once(tmp_path_factory, "synth", lambda d: generate(d / "bins", n=200, seed=0, size=64))


@pytest.fixture(scope="session")
def tiny_bins(tmp_path_factory) -> Path:
    """100 synthetic 32 px bins, 20 per count (``TINY`` runs)."""
    return made_once(tmp_path_factory, "tiny", lambda d: generate(d / "bins", n=100, seed=0, size=32))


@pytest.fixture(scope="session")
def other_tiny_bins(tmp_path_factory) -> Path:
    """A different 100: what a second host sees when the channel is sharded by S3 key."""
    return made_once(tmp_path_factory, "tiny2", lambda d: generate(d / "bins", n=100, seed=1, size=32))


@pytest.fixture(scope="session")
def bin_jpegs(synthetic_bins) -> dict[int, bytes]:
    """One synthetic JPEG per count 1..5, keyed by its true count."""
    found: dict[int, bytes] = {}
    for meta in sorted((synthetic_bins / "metadata").glob("*.json")):
        count = json.loads(meta.read_text())["EXPECTED_QUANTITY"]
        found.setdefault(count, (synthetic_bins / "images" / f"{meta.stem}.jpg").read_bytes())
    return found


@pytest.fixture(scope="session")
def moto_server() -> str:
    """A real moto server (all AWS services) on loopback for the session: its base URL."""
    from moto.server import ThreadedMotoServer

    from devtools.local_serve import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path):
    """Fresh moto state; env with fake credentials and the endpoint; a session recording calls.

    botocore validates every request's parameters before it is sent (on by default;
    nothing here turns it off), so a request it rejects raises ParamValidationError and
    fails the test. ``api_calls`` records every request that passed validation.
    """
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()
    for name in list(os.environ):
        if name.startswith(("AWS_", "ORCHESTRATE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # moto has no iam:SimulatePrincipalPolicy, which ModelTrainer uses to check the role.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return record(boto3.Session(region_name=REGION))


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    """A random-weight resnet18 at 64 px in a serving folder (no training run): for tests of the
    server and its contract, not of a trained model's answers."""
    from devtools.random_model import random_model

    return random_model(tmp_path_factory.mktemp("random_model"), arch="resnet18", size=64)


@pytest.fixture(scope="session")
def calibration_bins(tmp_path_factory, synthetic_bins) -> Path:
    """A calibration channel: 60 bins of its own (ids 00201-00260) and 10 of the training
    channel's (00001-00010), which must then not train."""
    def make(folder: Path) -> Path:
        out = generate(folder / "bins", n=260, seed=3, size=64)
        for i in range(1, 201):
            for sub, ext in (("images", "jpg"), ("metadata", "json")):
                (out / sub / f"{i:05d}.{ext}").unlink()
        for i in range(1, 11):
            for sub, ext in (("images", "jpg"), ("metadata", "json")):
                shutil.copy(synthetic_bins / sub / f"{i:05d}.{ext}", out / sub)
        return out
    return made_once(tmp_path_factory, "calibration", make)


def session_training_run(factory: pytest.TempPathFactory, name: str, channels: dict[str, Path],
                         hyperparameters: dict | None = None) -> tuple[Path, object]:
    """A toolkit run that must succeed, made once per test run (``made_once``): (tree, process)."""
    def train(folder: Path) -> tuple[Path, object]:
        base = make_opt_ml(folder, channels, hyperparameters)
        proc = run_toolkit_train(base)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return base, proc
    return made_once(factory, name, train)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_bins, calibration_bins) -> tuple[Path, object]:
    """The session's one plain toolkit run: a tiny resnet18 (64 px) on synthetic bins, its
    temperature and verdict thresholds fitted on a calibration channel. (tree, process)."""
    return session_training_run(tmp_path_factory, "opt_ml_session", {"training": synthetic_bins,
                                                                     "calibration": calibration_bins})


@pytest.fixture(scope="session")
def trained_model(trained_run) -> Path:
    """The session's trained model dir (``trained_run``)."""
    return trained_run[0] / "model"


@pytest.fixture(scope="session")
def instrumented_run(tmp_path_factory, tiny_bins) -> tuple[Path, object]:
    """The session's one run with every instrument on (``INSTRUMENTED``), which the rules,
    profiling and int8 tests read: (tree, process). The one run that quantizes (every other
    sets quantize=false through the fixture tree); ``int8-max-drop`` -100 makes the card name
    fp32 whatever int8 measures, with the reason."""
    return session_training_run(tmp_path_factory, "instrumented", {"training": tiny_bins}, INSTRUMENTED)


@pytest.fixture(scope="session")
def quantized_model(instrumented_run) -> Path:
    """The instrumented run's model dir: model.onnx and its int8 twin."""
    return instrumented_run[0] / "model"


@pytest.fixture(scope="session")
def int8_model(quantized_model, tmp_path_factory) -> Path:
    """The quantized run's model files (copied, so a container can mount them) under a card
    that names the int8 twin, as training writes it where int8 holds."""
    from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, ModelCard

    model_dir = tmp_path_factory.mktemp("int8_model")
    for name in (MODEL_ONNX, MODEL_INT8_ONNX):
        shutil.copy(quantized_model / name, model_dir / name)
    dataclasses.replace(ModelCard.read(quantized_model), onnx_file=MODEL_INT8_ONNX).write(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def diverging_run(tmp_path_factory, tiny_bins):
    """One toolkit run at lr 10 with the smdebug hook, its rules evaluated: (base, process).
    The loss diverges while the weights stay finite (seed 0), so the run finishes and
    leaves a real trial in output/tensors. shufflenet_v2_x0_5 saves ~20 MB of tensors
    where resnet18 saves ~600 MB."""
    hps = {**TINY, "arch": "shufflenet_v2_x0_5", "lr": "10", "debug-hook": "true", "augment": "false",
           "balanced-sampling": "false", "label-smoothing": "0", "checkpoint-steps": "0"}
    return session_training_run(tmp_path_factory, "diverging", {"training": tiny_bins}, hps)
