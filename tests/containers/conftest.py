"""Container fixtures: the real Docker engine and both images built once per
session from the wheelhouse with no network.

Tests here are marked ``container`` and skip with the reason when no engine
answers, the base image is absent, or ``make wheels`` has not been run
(``.ci/docker-setup.sh`` and ``.ci/run`` prepare all three on CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from container_helpers import (BASE_IMAGE, LABELSTUDIO_IMAGE, ROOT, SERVING_IMAGE, TRAINING_IMAGE, WHEELS, build,
                               docker, missing_wheels)


@pytest.fixture(scope="session")
def engine() -> None:
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Docker engine: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"no Docker engine answers `docker info`: {proc.stderr.strip()[:300]}")
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} absent (no registry here): run .ci/docker-setup.sh")


@pytest.fixture(scope="session")
def wheelhouse(engine) -> Path:
    missing = missing_wheels()
    if missing:
        pytest.skip(f"wheelhouse {WHEELS} lacks {len(missing)} wheels "
                    f"(e.g. {', '.join(missing[:3])}): run `make wheels`")
    # Our own wheel is rebuilt from this tree (offline: the venv's setuptools), so the
    # images hold the code under test, not whatever `make wheels` last packed.
    project = WHEELS / "project"
    shutil.rmtree(project)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(project), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    return WHEELS


@pytest.fixture(scope="session")
def training_image(wheelhouse) -> str:
    build("training-image/Dockerfile", TRAINING_IMAGE)
    return TRAINING_IMAGE


@pytest.fixture(scope="session")
def serving_image(wheelhouse) -> str:
    build("serving-image/Dockerfile", SERVING_IMAGE)
    return SERVING_IMAGE


@pytest.fixture(scope="session")
def labelstudio_image(wheelhouse) -> str:
    """Compose's review profile's Label Studio, from its own wheels (wheels/labelstudio)."""
    if not (WHEELS / "labelstudio" / ".complete").is_file():
        pytest.skip("no Label Studio wheels in wheels/labelstudio: run `make wheels`")
    build("labelstudio-image/Dockerfile", LABELSTUDIO_IMAGE)
    return LABELSTUDIO_IMAGE


@pytest.fixture(scope="session")
def network(engine):
    """A user network: the engine runs with --bridge=none, and publishing a port needs one."""
    name = f"bincounter-test-{os.getpid()}"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)
