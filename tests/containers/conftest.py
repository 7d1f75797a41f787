"""Container fixtures: the real Docker engine and the three images built once per
session with no network, each from its own build context (``devtools.build_context``).

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
                               docker)

from devtools import build_context


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
    """wheels/ (``make wheels``) with our own wheel made anew from this tree (offline: the venv's
    setuptools), so the images hold the code under test, not whatever ``make wheels`` last packed."""
    if not (WHEELS / ".complete").is_file():
        pytest.skip(f"no wheelhouse in {WHEELS}: run `make wheels`")
    project = WHEELS / "project"
    shutil.rmtree(project, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(project), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    return WHEELS


def _build(image: str, tag: str) -> str:
    """The image from its own context, linked anew from the wheelhouse; a skip naming the
    missing wheels when the wheelhouse lacks some."""
    try:
        build(image, tag)
    except build_context.BuildContextError as exc:
        pytest.skip(str(exc))
    return tag


@pytest.fixture(scope="session")
def training_image(wheelhouse) -> str:
    return _build("training", TRAINING_IMAGE)


@pytest.fixture(scope="session")
def serving_image(wheelhouse) -> str:
    return _build("serving", SERVING_IMAGE)


@pytest.fixture(scope="session")
def labelstudio_image(wheelhouse) -> str:
    """Compose's review profile's Label Studio, from its own wheels (wheels/labelstudio)."""
    return _build("labelstudio", LABELSTUDIO_IMAGE)


@pytest.fixture(scope="session")
def network(engine):
    """A user network: the engine runs with --bridge=none, and publishing a port needs one."""
    name = f"bincounter-test-{os.getpid()}"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)
