"""The local SageMaker Runtime answers the README's calls like the real API, in front of the real ``serve``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lambda_helpers import ENDPOINT

pytestmark = pytest.mark.slow
AWS_CLI = str(Path(sys.executable).with_name("aws"))


@pytest.fixture
def bin_jpg(tmp_path, bin_jpegs) -> Path:
    path = tmp_path / "bin.jpg"
    path.write_bytes(bin_jpegs[3])
    return path


def test_aws_cli_invoke_endpoint_passes_type_and_custom_attributes_through(runtime_emulator, bin_jpg, tmp_path):
    out = tmp_path / "out.json"
    env = {**os.environ, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_emulator.url}
    done = subprocess.run([AWS_CLI, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", ENDPOINT,
                           "--content-type", "image/jpeg", "--accept", "application/json",
                           "--custom-attributes", "expected_quantity=3", "--body", f"fileb://{bin_jpg}", str(out)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
    assert json.loads(out.read_text())["verification"]["expected_quantity"] == 3


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_with_sigv4_gets_the_prediction_and_the_variant_header(runtime_emulator, bin_jpg, tmp_path):
    head_file, body_file = tmp_path / "head", tmp_path / "body"
    done = subprocess.run(["curl", "-sS", "-D", str(head_file), "-o", str(body_file),
                           "--aws-sigv4", "aws:amz:us-east-1:sagemaker",
                           "--user", "testing:testing", "-H", "Content-Type: image/jpeg",
                           "-H", "Accept: application/json", "--data-binary", f"@{bin_jpg}",
                           f"{runtime_emulator.url}/endpoints/{ENDPOINT}/invocations"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    head = head_file.read_text()
    assert head.startswith("HTTP/1.1 200")
    assert "x-amzn-invoked-production-variant: alltraffic" in head.lower()
    prediction = json.loads(body_file.read_text())
    assert prediction["count"] in range(1, 6) and "verification" not in prediction
