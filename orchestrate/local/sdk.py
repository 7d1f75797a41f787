"""Our images under the SageMaker Python SDK's own local mode: AWS's code, no account.

``orchestrate train --local`` runs ``ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)``
with the training image on a local data folder; the SDK writes the ``/opt/ml``
tree, the config files and a compose file under a fresh root and collects
``compressed_artifacts/model.tar.gz``. ``orchestrate deploy --local`` runs
``LocalSession``'s ``create_model`` / ``create_endpoint_config`` /
``create_endpoint`` with the serving image and serves until SIGTERM or Ctrl-C;
``orchestrate invoke --local`` calls it through the SDK's runtime client.

Where the SDK needs help (docs/platform.md §7):
- offline: the session comes with telemetry opted out and dummy keys, so the SDK
  neither calls home nor looks up credentials (IMDS), and no real key of the
  user's is written into the compose file it generates;
- signals: its telemetry wrapper swallows KeyboardInterrupt (``train`` then
  returns normally with an empty model) and nothing stops the container on
  SIGTERM; here SIGTERM and SIGINT stop compose (which stops the container with
  SIGTERM) and end the command with 143 / 130;
- failures: the SDK's error lacks the container's reason; here it is read from
  ``output/failure``; a reused root would mix runs, so every job gets its own.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tarfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import boto3

from orchestrate.core.config import ConfigError

log = logging.getLogger(__name__)
# the SDK's config schema; only the telemetry switch is set
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
ENDPOINT = "bincounter-local"


class LocalJobStopped(Exception):
    """SIGTERM or SIGINT arrived while a local job or endpoint ran (an Exception, not a
    KeyboardInterrupt: the SDK's telemetry wrapper would swallow that)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def sdk_session(region: str):
    """The one LocalSession of local mode: telemetry off, dummy keys (nothing local needs AWS)."""
    from sagemaker.core.local.local_session import LocalSession

    boto = boto3.Session(region_name=region, aws_access_key_id="local-mode", aws_secret_access_key="local-mode")
    return LocalSession(boto_session=boto, sagemaker_config=SDK_CONFIG)


def _children_done(timeout: float) -> None:
    """Reap the SDK's `docker compose` child once it has stopped its container."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.2)
    log.warning("docker compose still running %.0f s after the stop", timeout)


def _leaves(pid: int) -> list[int]:
    """The processes at the ends of ``pid``'s tree. The SDK's ``docker compose`` is the docker
    CLI running the compose plugin as its child: a SIGTERM to both (the SDK's own
    ``kill_child_processes`` signals the whole tree) can reach the plugin twice, the CLI
    forwarding its own, and compose takes a second signal as "kill now" instead of stopping
    the container, which then never writes output/failure (seen once in a CI rehearsal).
    One signal to the plugin alone stops it gracefully."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    return [leaf for child in map(int, found) for leaf in (_leaves(child) or [child])]


@contextmanager
def stoppable(reap: bool, grace: float = 30.0):
    """SIGTERM / SIGINT -> SIGTERM to the SDK's compose process (it stops the container),
    then LocalJobStopped in this thread; with ``reap``, once compose has exited (training:
    the SDK abandons its Popen when the exception unwinds; serving: its own thread waits)."""
    def stop(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # one stop is enough
        for pid in _leaves(os.getpid()):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        raise LocalJobStopped(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except LocalJobStopped:
        if reap:
            _children_done(grace)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def failure_reason(root: Path) -> str | None:
    """The container's ``output/failure``, wherever the SDK left it."""
    for path in (root / "artifacts" / "output" / "failure", root / "algo-1" / "output" / "failure"):
        if path.is_file():
            return path.read_text(errors="replace").strip()[:1024]
    return None


def train(image: str, data: Path, hyperparameters: dict[str, str], root: Path, region: str,
          job_name: str, channels: dict[str, Path] | None = None) -> Path:
    """One local training job in ``root`` (must not exist) on ``data`` as the training channel
    and any other ``channels`` (name -> folder); returns its model.tar.gz."""
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train import ModelTrainer
    from sagemaker.train.model_trainer import Mode

    root.mkdir(parents=True)
    trainer = ModelTrainer(training_mode=Mode.LOCAL_CONTAINER, training_image=image,
                           sagemaker_session=sdk_session(region), base_job_name=job_name,
                           compute=Compute(instance_type="local_cpu", instance_count=1),
                           hyperparameters=hyperparameters, local_container_root=str(root))
    try:
        with stoppable(reap=True):
            # wait=False is broken in SDK 3.27 local mode (it tars an empty model at once)
            trainer.train(input_data_config=[InputData(channel_name=name, data_source=str(folder)) for name, folder
                                             in {"training": data, **(channels or {})}.items()], wait=True)
    except RuntimeError as exc:  # compose exited non-zero: the reason is in output/failure
        raise RuntimeError(f"local training failed: {failure_reason(root) or exc}") from None
    finally:
        remove_containers(root)
    model = root / "compressed_artifacts" / "model.tar.gz"
    if not (root / "artifacts" / "output" / "success").is_file():
        raise RuntimeError(f"local training did not finish: {failure_reason(root) or 'no output/success'}")
    with tarfile.open(model) as tar:
        missing = {"model.onnx", "model.json"} - set(tar.getnames())
    if missing:
        raise RuntimeError(f"{model} lacks {', '.join(sorted(missing))}")
    return model


def remove_containers(root: Path) -> None:
    """The SDK never runs `compose down`: it leaves its exited containers behind, and a
    serving container running when a job fails. Remove every container of a compose
    project it made under ``root`` (not the network every local-mode project shares)."""
    listed = subprocess.run(["docker", "ps", "--all", "--format",
                             '{{.ID}} {{.Label "com.docker.compose.project.working_dir"}}'],
                            capture_output=True, text=True, timeout=60, check=False).stdout.splitlines()
    root = root.resolve()  # compose labels its projects with absolute paths
    ours = [cid for cid, _, where in (line.partition(" ") for line in listed)
            if where and Path(where).is_relative_to(root)]
    if ours:
        subprocess.run(["docker", "rm", "--force", *ours], capture_output=True, timeout=120, check=False)
        log.info("removed the %d container(s) the SDK left", len(ours))


def model_dir(model_data: Path, root: Path) -> Path:
    """``root/model``: the model's serving files in a folder of their own, because the SDK
    unpacks every tarball it finds beside ``ModelDataUrl`` into that folder and mounts all
    of it at /opt/ml/model. A model folder is copied without tarballs and torch weights;
    a model.tar.gz is unpacked."""
    target = root / "model"
    if model_data.is_dir():
        shutil.copytree(model_data, target, ignore=shutil.ignore_patterns("*.tar.gz", "*.pth"))
    elif model_data.is_file() and tarfile.is_tarfile(model_data):
        target.mkdir(parents=True)
        with tarfile.open(model_data) as tar:
            tar.extractall(target, filter="data")
    else:
        raise ConfigError(f"--model-data {model_data}: neither a model folder nor a model.tar.gz")
    return target


def serve(image: str, model_data: Path, root: Path, region: str, port: int,
          environment: dict[str, str] | None = None, on_ready=None) -> None:
    """A local endpoint on ``port`` until SIGTERM / SIGINT (raises LocalJobStopped then,
    after the container has stopped)."""
    sess = sdk_session(region)
    root.mkdir(parents=True, exist_ok=True)
    sess.config = {"local": {"serving_port": port, "container_root": str(root)}}
    sm = sess.sagemaker_client
    model = model_dir(model_data, root)
    sm.create_model(ModelName=ENDPOINT, PrimaryContainer={
        "Image": image, "ModelDataUrl": f"file://{model}", "Environment": environment or {}})
    sm.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": ENDPOINT, "InitialInstanceCount": 1,
        "InstanceType": "local"}])
    try:
        with stoppable(reap=False):
            sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
            if on_ready is not None:
                on_ready(sm.describe_endpoint(EndpointName=ENDPOINT))
            while True:
                time.sleep(3600)
    finally:
        # ends the SDK's compose process (which stops the container) and its non-daemon
        # serving thread, and deletes the SDK's folder with the compose file
        sm.delete_endpoint(EndpointName=ENDPOINT)
        sm.delete_endpoint_config(EndpointConfigName=ENDPOINT)
        sm.delete_model(ModelName=ENDPOINT)
        remove_containers(root)


def invoke(body: bytes, content_type: str, port: int, region: str, expected_quantity: int | None) -> tuple[int, bytes]:
    """One request through the SDK's local runtime client: (HTTP status, body)."""
    sess = sdk_session(region)
    sess.config = {"local": {"serving_port": port}}
    args = {"Body": body, "EndpointName": ENDPOINT, "ContentType": content_type, "Accept": "application/json"}
    if expected_quantity is not None:
        args["CustomAttributes"] = f"expected_quantity={expected_quantity}"
    reply = sess.sagemaker_runtime_client.invoke_endpoint(**args)
    return reply["ResponseMetadata"]["HTTPStatusCode"], reply["Body"].read()
