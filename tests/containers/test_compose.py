"""``docker compose up --exit-code-from client``: the whole local loop, as the README runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from container_helpers import ROOT, docker

from devtools.local_serve import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]

REAL_IMAGES = 60


@pytest.fixture
def abid_subset(abid_sample, tmp_path):
    """A few real photos in the ABID layout (copied to tmp, never into the repo)."""
    out = tmp_path / "abid"
    (out / "images").mkdir(parents=True)
    (out / "metadata").mkdir()
    taken = 0
    for meta in sorted((abid_sample / "metadata").glob("*.json")):
        image = abid_sample / "images" / f"{meta.stem}.jpg"
        if image.is_file() and 1 <= json.loads(meta.read_text()).get("EXPECTED_QUANTITY", 0) <= 5:
            shutil.copy(meta, out / "metadata")
            shutil.copy(image, out / "images")
            taken += 1
        if taken == REAL_IMAGES:
            break
    return out


def test_compose_up_runs_the_loop_and_the_client_exits_0_with_counts(training_image, serving_image,
                                                                     abid_subset):
    project = f"bincounter-test-{os.getpid()}"
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "ABID_DIR": str(abid_subset),
           "EPOCHS": "1", "CLIENT_IMAGES": "6", "SERVE_PORT": str(free_port()),
           "LAMBDA_PORT": str(free_port())}
    compose = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml")]
    start = time.monotonic()
    try:
        # The fixtures have just built both images from these Dockerfiles (classic builder,
        # no network); compose's --build would build them a second time with the engine's
        # BuildKit, a second cache of the 6 GB training image. Everything else is the README's run.
        proc = subprocess.run([*compose, "up", "--no-build", "--exit-code-from", "client"], env=env,
                              capture_output=True, text=True, timeout=1500)
        seconds = time.monotonic() - start
        client = [line.split("|", 1)[1] for line in proc.stdout.splitlines() if line.startswith("client-")]
        print(f"\ncompose up: exit {proc.returncode} after {seconds:.0f} s; client said:\n" + "\n".join(client))
        if proc.returncode != 0:
            logs = subprocess.run([*compose, "logs", "--no-color", "data", "train"], env=env,
                                  capture_output=True, text=True, timeout=60)
            pytest.fail(f"compose up exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n"
                        f"data/train logs:\n{logs.stdout[-4000:]}")
        assert any("counts:" in line and "counted as expected" in line for line in client)
        answers = [line.split() for line in client if line.split()[-1:] in (["match"], ["mismatch"], ["review"])]
        assert len(answers) == 6, client
        # the runtime emulator captured every answer, and the monitor read each one back
        assert any(line.strip() == "monitor: 6 answers read back from the data capture" for line in client), client
        assert any(line.strip().startswith("drift: not judged (6 answers") for line in client), client
        trained = docker("run", "--rm", "-v", f"{project}_ml-model:/m:ro", "--entrypoint", "ls",
                         serving_image, "/m").stdout.split()
        assert {"model.onnx", "model.json"} <= set(trained)
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], env=env,
                       capture_output=True, timeout=180)


def two_hosts(project: str, **extra: str) -> tuple[dict, list[str]]:
    """The two-hosts profile's environment (100 bins, one epoch, 3 client images) and compose command."""
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "HOSTS": "algo-1,algo-2", "BINS": "100", "EPOCHS": "1",
           "CLIENT_IMAGES": "3", "SERVE_PORT": str(free_port()), "LAMBDA_PORT": str(free_port()), **extra}
    return env, ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "two-hosts"]


def loop_up(compose: list[str], env: dict) -> tuple[subprocess.CompletedProcess, str]:
    """The loop up to the client's exit, and both training hosts' logs."""
    proc = subprocess.run([*compose, "up", "--no-build", "--exit-code-from", "client"], env=env,
                          capture_output=True, text=True, timeout=1200)
    logs = subprocess.run([*compose, "logs", "--no-color", "train", "train-algo-2"], env=env,
                          capture_output=True, text=True, timeout=60).stdout
    return proc, logs


@pytest.fixture(scope="module")
def two_hosts_project(training_image, serving_image):
    """One compose project for both profiles: the two-hosts loop trains once (DDP), then the audit
    profile audits that model in the same project (`up --no-deps batch audit`: train is not run again)."""
    project = f"bincounter-test2-{os.getpid()}"
    env, compose = two_hosts(project)
    try:
        proc, logs = loop_up(compose, env)
        yield {"env": env, "compose": [*compose, "--profile", "audit"], "project": project, "up": proc,
               "train_logs": logs}
    finally:
        compose = [*compose, "--profile", "audit"]
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], env=env,
                       capture_output=True, timeout=180)


def test_two_hosts_profile_trains_with_ddp_and_both_ranks_end_equal(two_hosts_project):
    proc, logs = two_hosts_project["up"], two_hosts_project["train_logs"]
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}\n{logs[-4000:]}"
    digests = dict((rank, digest) for digest, rank in
                   re.findall(r"final weights sha256 (\w+) \(rank (\d) of 2\)", logs))
    print(f"\ntwo hosts: final weights per rank {digests}")
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], logs[-3000:]


def test_two_hosts_train_with_ddp_from_a_channel_of_shards_and_the_loop_answers(training_image, serving_image):
    """LAYOUT=shards: docker-compose.yml's data service packs the bins into shards; each host
    reads the stream of its shards (docs/training.md "Training on the whole bucket")."""
    env, compose = two_hosts(f"bincounter-test3-{os.getpid()}", LAYOUT="shards")
    try:
        proc, logs = loop_up(compose, env)
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], env=env, capture_output=True, timeout=180)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}\n{logs[-4000:]}"
    # both hosts read shards (without LAYOUT in the data service they read loose files: this fails)
    assert len(re.findall(r"training channel of shards: train \d+ shards", logs)) == 2, logs[-3000:]
    digests = dict((rank, digest) for digest, rank in
                   re.findall(r"final weights sha256 (\w+) \(rank (\d) of 2\)", logs))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], logs[-3000:]


def test_the_audit_profile_audits_the_projects_model_and_its_counts_add_up(two_hosts_project, serving_image):
    """docs/cloud.md "Compose": after a loop, `--profile audit up --no-deps ... batch audit`."""
    env, compose, project = (two_hosts_project[k] for k in ("env", "compose", "project"))
    assert two_hosts_project["up"].returncode == 0, "the loop before the audit failed (see the DDP test)"
    trained = docker("run", "--rm", "-v", f"{project}_ml-model:/m:ro", "--entrypoint", "stat", serving_image,
                     "-c", "%Y", "/m/model.onnx").stdout.strip()
    proc = subprocess.run([*compose, "up", "--no-build", "--no-deps", "--exit-code-from", "audit", "batch",
                           "audit"], env=env, capture_output=True, text=True, timeout=600)
    said = [line.split("|", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("audit-")]
    print("\naudit said:\n" + "\n".join(said))
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    line = next(x for x in said if x.startswith("audit: "))
    photos = int(re.match(r"audit: ([\d,]+) photos", line).group(1).replace(",", ""))
    counted = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) [a-z-]+(?:,|$)", line.split(": ", 2)[2]))
    assert photos == counted == 100
    report = docker("run", "--rm", "-v", f"{project}_audit-report:/a:ro", "--entrypoint", "cat",
                    serving_image, "/a/audit.md").stdout
    assert "## Recount first" in report and "| **all photos** | **100** | 100% |" in report
    # the model the loop trained, not a second training run
    assert docker("run", "--rm", "-v", f"{project}_ml-model:/m:ro", "--entrypoint", "stat", serving_image,
                  "-c", "%Y", "/m/model.onnx").stdout.strip() == trained


def test_compose_without_the_build_contexts_says_what_to_run_in_one_line(engine, tmp_path):
    """A checkout where `make wheels` never ran (no .env line): compose stops before any build."""
    env = {k: v for k, v in os.environ.items() if k != "BINCOUNTER_CONTEXTS"}
    proc = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"),
                           "--project-directory", str(tmp_path), "up", "--build"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(said) == 1 and "run `make wheels` first, or `make up`" in said[0], said
