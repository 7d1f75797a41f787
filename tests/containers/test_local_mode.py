"""Our images under the SageMaker Python SDK's own local mode (``orchestrate ... --local``):
AWS's code writes the /opt/ml tree, the config files and the compose file, offline.

Each test runs the real ``python -m orchestrate`` with a network guard on its Python
(tests/containers/netguard): any lookup or connection beyond loopback fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from container_helpers import IMAGE_TAG, ROOT, docker

from bincounter.modelcard import ModelCard
from devtools.local_serve import free_port
from orchestrate.local.sdk import sdk_session

pytestmark = [pytest.mark.container, pytest.mark.slow]

NETGUARD = Path(__file__).parent / "netguard"
# shufflenet_v2_x0_5: a 5 MB model (resnet18's model.tar.gz holds 90 MB to gzip)
TINY = ["--hp", "arch=shufflenet_v2_x0_5", "--hp", "image-size=32", "--hp", "epochs=1", "--hp", "batch-size=16",
        "--hp", "num-workers=0", "--hp", "pretrained=false"]


def orchestrate_cmd(tmp_path: Path, *args) -> tuple[list[str], dict]:
    config = tmp_path / "orchestrate.toml"
    config.write_text('[aws]\nregion = "us-east-1"\nstack = "lm"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCHESTRATE_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(NETGUARD), str(ROOT), env.get("PYTHONPATH", "")]),
               NETGUARD_LOG=str(tmp_path / "netguard.log"), PYTHONUNBUFFERED="1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, HOME=str(tmp_path))
    return [sys.executable, "-m", "orchestrate", "--config", str(config), "--set", f"images.tag={IMAGE_TAG}",
            *map(str, args)], env


def assert_offline(tmp_path: Path) -> None:
    log = tmp_path / "netguard.log"
    assert not log.exists(), f"local mode tried the network:\n{log.read_text()}"


def containers_of(root: Path) -> list[str]:
    """Containers (running or not) of the compose files under ``root``."""
    out = docker("ps", "-a", "--format", '{{.Names}} {{.Label "com.docker.compose.project.config_files"}}').stdout
    return [line for line in out.splitlines() if str(root) in line]


def test_training_in_sdk_local_mode_leaves_the_model_where_the_sdk_collects_it(training_image, tiny_bins,
                                                                              tmp_path):
    cmd, env = orchestrate_cmd(tmp_path, "train", "--local", "--data", tiny_bins,
                               "--local-root", tmp_path / "local", *TINY)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    print(f"\nlocal training job: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model_tar = Path(proc.stdout.strip().splitlines()[-1])
    root = model_tar.parents[1]
    assert model_tar == root / "compressed_artifacts" / "model.tar.gz" and root.parent == tmp_path / "local"
    assert (root / "docker-compose.yaml").is_file()  # the SDK's, not ours
    with tarfile.open(model_tar) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    card = ModelCard.read(tmp_path / "model")
    # our hyperparameters reached train.py through the SDK's hyperparameters.json
    assert (card.classes, card.arch) == ([1, 2, 3, 4, 5], "shufflenet_v2_x0_5")
    assert (tmp_path / "model" / "model.onnx").stat().st_size > 0
    assert (root / "artifacts" / "output" / "success").is_file()
    assert containers_of(root) == [], "the job's container was left behind"
    assert_offline(tmp_path)


def test_a_job_needing_weights_the_local_image_lacks_is_refused_before_the_container_starts(
        training_image, tiny_bins, tmp_path):
    cmd, env = orchestrate_cmd(tmp_path, "train", "--local", "--data", tiny_bins,
                               "--local-root", tmp_path / "local", "--hp", "arch=resnet18")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "refused before the container starts" in proc.stderr and "pretrained=false" in proc.stderr
    assert not (tmp_path / "local").exists()


def test_sigterm_stops_local_training_and_its_container(training_image, tiny_bins, tmp_path):
    """The SDK alone leaves the container training on when its process gets SIGTERM."""
    cmd, env = orchestrate_cmd(tmp_path, "train", "--local", "--data", tiny_bins,
                               "--local-root", tmp_path / "local", *TINY, "--hp", "epochs=500")
    out, err_file = tmp_path / "train.out", tmp_path / "train.err"
    with open(out, "w") as stdout, open(err_file, "w") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, text=True)
    try:
        wait_for_line(out, "#metrics epoch=1 split=train", proc, timeout=600)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # the orchestrate process only, not its group
        code = proc.wait(timeout=90)
    finally:
        proc.kill()
    stopped = time.monotonic() - start
    err = err_file.read_text()
    print(f"\nstopped {stopped:.1f} s after SIGTERM, exit {code}")
    assert code == 143, err[-3000:]
    assert "stopped by SIGTERM" in err and "Interrupted: stopped by SIGTERM at epoch" in err, err[-3000:]
    root, = (tmp_path / "local").iterdir()
    assert containers_of(root) == []
    assert_offline(tmp_path)


def wait_for_line(path: Path, words: str, proc: subprocess.Popen, timeout: float) -> None:
    """Until ``words`` appear in the file ``proc`` writes to (a file: compose's log stream
    through the SDK would fill a pipe nobody reads)."""
    deadline = time.monotonic() + timeout
    while words not in path.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, path.read_text()[-3000:]
        time.sleep(0.5)


@pytest.fixture
def local_endpoint(serving_image, trained_model, tmp_path):
    """``orchestrate deploy --local`` on the session's model: (process, port, its stderr file)."""
    port = free_port()
    cmd, env = orchestrate_cmd(tmp_path, "deploy", "--local", "--model-data", trained_model,
                               "--port", port, "--local-root", tmp_path / "local")
    out, err = tmp_path / "deploy.out", tmp_path / "deploy.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, text=True)
    try:
        wait_for_line(out, "InService", proc, timeout=180)
        yield proc, port, err
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_the_local_endpoint_counts_real_jpegs_through_the_sdks_runtime_client_and_stops_on_sigterm(
        local_endpoint, abid_sample, trained_model, tmp_path):
    proc, port, err = local_endpoint
    session = sdk_session("us-east-1")
    session.config = {"local": {"serving_port": port}}
    runtime = session.sagemaker_runtime_client
    classes = ModelCard.read(trained_model).classes
    for jpeg in sorted((abid_sample / "images").glob("*.jpg"))[:3]:
        reply = runtime.invoke_endpoint(Body=jpeg.read_bytes(), EndpointName="bincounter-local",
                                        ContentType="image/jpeg", Accept="application/json",
                                        CustomAttributes="expected_quantity=3")
        assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200
        answer = json.loads(reply["Body"].read())
        assert answer["count"] in classes and answer["verification"]["expected_quantity"] == 3
    bad = runtime.invoke_endpoint(Body=b"not a jpeg", EndpointName="bincounter-local", ContentType="image/jpeg")
    assert bad["ResponseMetadata"]["HTTPStatusCode"] == 400 and json.loads(bad["Body"].read())["error"]
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    print(f"\nlocal endpoint stopped {time.monotonic() - start:.1f} s after SIGTERM, exit {code}")
    assert code == 0, err.read_text()[-3000:]
    assert containers_of(tmp_path / "local") == []
    with pytest.raises(Exception):
        runtime.invoke_endpoint(Body=b"x", EndpointName="bincounter-local", ContentType="image/jpeg")
    assert_offline(tmp_path)


def test_the_network_guard_refuses_a_connection_beyond_loopback(tmp_path):
    """assert_offline would prove nothing if the guard were not loaded: it is."""
    _, env = orchestrate_cmd(tmp_path)
    code = "import socket; socket.create_connection(('192.0.2.1', 443), timeout=5)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "netguard" in proc.stderr
    assert "BLOCKED DNS lookup of '192.0.2.1'" in (tmp_path / "netguard.log").read_text()


def test_the_shard_job_in_local_mode_on_two_instances_makes_the_folder_paths_bins(training_image, tiny_bins,
                                                                                   tmp_path):
    """docs/training.md "Training on the whole bucket": each container takes its share of the part
    files (orchestrate.data.shard_local: the SDK takes FullyReplicated inputs only)."""
    from bincounter.shards import scan_shards

    cmd, env = orchestrate_cmd(tmp_path, "shards", "--from-dir", tiny_bins, "--out", tmp_path / "folder",
                               "--shard-mb", "0.05")
    assert subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300).returncode == 0
    cmd, env = orchestrate_cmd(tmp_path, "shards", "--from-dir", tiny_bins, "--out", tmp_path / "job", "--local",
                               "--instance-count", "2", "--shard-mb", "0.05", "--local-root", tmp_path / "local")
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    print(f"\nlocal shard job, 2 instances: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, out[-4000:]
    # each container packed one part (compose prefixes a container's lines with its name);
    # without the share in shard_job.host_share both pack both parts: 4 lines, and this fails
    packed = [line for line in out.splitlines() if " shards (0 already finished)" in line]
    assert len(packed) == 2 and len({line.split()[0] for line in packed}) == 2, packed
    folder, job = scan_shards(tmp_path / "folder"), scan_shards(tmp_path / "job")
    for split in folder:  # the same bins in the same splits, byte for byte, with the same counts
        assert {s.id: (s.count, s.image_path.read_bytes()) for s in folder[split]} == \
            {s.id: (s.count, s.image_path.read_bytes()) for s in job[split]}, split
    assert sum(len(v) for v in job.values()) == 100
    assert json.loads((tmp_path / "job" / "shards.json").read_text())["parts"] == ["00000", "00001"]
    assert containers_of(tmp_path / "local") == []
    assert_offline(tmp_path)
