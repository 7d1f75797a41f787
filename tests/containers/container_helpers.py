"""Helpers for the container tests: the docker CLI, image builds from their contexts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from devtools import build_context
from devtools.build_context import canonical

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / "wheels"
BASE_IMAGE = "public.ecr.aws/docker/library/python:3.11-slim-bookworm"
# IMAGE_TAG as in the Makefile and docker-compose.yml: a second checkout testing on
# the same engine uses its own tag instead of overwriting this one's images
IMAGE_TAG = os.environ.get("IMAGE_TAG") or "latest"
TRAINING_IMAGE = f"bincounter-training:{IMAGE_TAG}"
SERVING_IMAGE = f"bincounter-serving:{IMAGE_TAG}"
LABELSTUDIO_IMAGE = f"bincounter-labelstudio:{IMAGE_TAG}"


def docker(*args: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} … exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build(image: str, tag: str) -> float:
    """``docker build --network none`` (classic builder) from the image's own context under
    build/context/ (``devtools.build_context``, made anew first); returns seconds."""
    context = build_context.make(image)
    start = time.monotonic()
    docker("build", "--network", "none", "--build-arg", "PRETRAINED_WEIGHTS=0",
           "-f", str(context / build_context.IMAGES[image].dockerfile), "-t", tag, str(context), timeout=1800,
           env={**os.environ, "DOCKER_BUILDKIT": "0"})
    seconds = time.monotonic() - start
    size = int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    print(f"\nbuilt {tag} in {seconds:.0f} s from {build_context.size(context) / 1e6:.0f} MB of context: "
          f"{size / 1e6:.0f} MB")
    return seconds


def image_config(tag: str) -> dict:
    return json.loads(docker("image", "inspect", tag, "--format", "{{json .Config}}").stdout)


def installed_versions(tag: str) -> dict[str, str]:
    """Every distribution in the image's Python environment (PATH's python)."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c", code).stdout
    return {canonical(k): v for k, v in json.loads(out).items()}
