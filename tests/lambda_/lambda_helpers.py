"""Helpers for the Lambda tests: paths, AWS-shaped events, real boto3 clients, a real ``serve``."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_DIR = ROOT / "lambda"
EVENTS = ROOT / "tests" / "fixtures" / "events"
SERVE = str(Path(sys.executable).with_name("serve"))
ENDPOINT = "bincounter"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}

# The Lambda's modules sit at the top level of its zip: import them the same way;
# devtools (the emulators) is imported from the repo root like `python -m devtools.demo` does.
for _path in (LAMBDA_DIR, ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import handler  # noqa: E402  (needs the path above)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_event(name: str, image: bytes | None = None) -> dict:
    """An event fixture (shaped like AWS's documented example) with the image filled in."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    if image is not None:
        encoded = base64.b64encode(image).decode()
        for key in ("body", "image_b64"):
            if event.get(key) == "BASE64_IMAGE":
                event[key] = encoded
    return event


def client(service: str, endpoint_url: str | None = None, settings=None):
    config = (settings or handler.Settings(ENDPOINT, max_attempts=1)).client_config()
    return boto3.client(service, endpoint_url=endpoint_url, config=config,
                        region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def start_serve(model_dir: Path, timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
           "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": "1"}
    # a file, not a pipe: serve logs a line per request and an unread pipe would
    # block it once full
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([SERVE], env=env, stdout=subprocess.DEVNULL, stderr=log,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"serve exited with {proc.returncode}: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as reply:
                if reply.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop_process(proc)
    raise RuntimeError(f"serve did not pass /ping within {timeout} s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
