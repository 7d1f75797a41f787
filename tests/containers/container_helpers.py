"""Helpers for the container tests: the docker CLI, lock files, image builds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / "wheels"
BASE_IMAGE = "public.ecr.aws/docker/library/python:3.11-slim-bookworm"
# IMAGE_TAG as in the Makefile and docker-compose.yml: a second checkout testing on
# the same engine uses its own tag instead of overwriting this one's images
IMAGE_TAG = os.environ.get("IMAGE_TAG") or "latest"
TRAINING_IMAGE = f"bincounter-training:{IMAGE_TAG}"
SERVING_IMAGE = f"bincounter-serving:{IMAGE_TAG}"
LABELSTUDIO_IMAGE = f"bincounter-labelstudio:{IMAGE_TAG}"
LOCKS = {"training": ROOT / "requirements" / "training.lock",
         "serving": ROOT / "requirements" / "serving.lock"}


def docker(*args: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} … exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def missing_wheels() -> list[str]:
    have = {canonical(p.name.split("-")[0]) + "==" + p.name.split("-")[1]
            for p in WHEELS.glob("*.whl")}
    want = {f"{n}=={v}" for lock in LOCKS.values() for n, v in read_lock(lock).items()}
    missing = sorted(want - have)
    if not list((WHEELS / "project").glob("bincounter-*.whl")):
        missing.append("bincounter (project wheel)")
    return missing


def build(dockerfile: str, tag: str) -> float:
    """``docker build --network none`` (classic builder) from the repo root; returns seconds."""
    start = time.monotonic()
    docker("build", "--network", "none", "--build-arg", "PRETRAINED_WEIGHTS=0",
           "-f", dockerfile, "-t", tag, str(ROOT), timeout=1800,
           env={**os.environ, "DOCKER_BUILDKIT": "0"})
    seconds = time.monotonic() - start
    size = int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    print(f"\nbuilt {tag} in {seconds:.0f} s: {size / 1e6:.0f} MB")
    return seconds


def image_config(tag: str) -> dict:
    return json.loads(docker("image", "inspect", tag, "--format", "{{json .Config}}").stdout)


def installed_versions(tag: str) -> dict[str, str]:
    """Every distribution in the image's Python environment (PATH's python)."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c", code).stdout
    return {canonical(k): v for k, v in json.loads(out).items()}
