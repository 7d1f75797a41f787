"""Helpers for the Lambda tests: paths, AWS-shaped events, real boto3 clients, a real ``serve``."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_DIR = ROOT / "lambda"
EVENTS = ROOT / "tests" / "fixtures" / "events"
SERVE = str(Path(sys.executable).with_name("serve"))
ENDPOINT = "bincounter"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}

# The Lambda's modules sit at the top level of its zip: import them the same way.
if str(LAMBDA_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDA_DIR))

import handler  # noqa: E402  (needs the path above)


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
