"""The local Lambda Invoke API: `aws lambda invoke` and boto3's lambda client run our handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import botocore.exceptions
import pytest
from devtools.local_serve import stop as stop_process
from lambda_helpers import ENDPOINT, LAMBDA_DIR, ROOT, client, load_event

from devtools.lambda_emulator import LambdaEmulator, load_handler
from devtools.local_http import spawn

AWS_CLI = str(Path(sys.executable).with_name("aws"))


@pytest.fixture
def local_lambda(tmp_path):
    """In-process emulator with our handler as ``bincounter`` and a deliberately broken ``crashes``."""
    (tmp_path / "broken.py").write_text("def handler(event, context):\n    raise KeyError('image')\n")
    emulator = LambdaEmulator({"bincounter": load_handler(LAMBDA_DIR, "handler.lambda_handler"),
                               "crashes": load_handler(tmp_path, "broken.handler")}).start()
    yield emulator
    emulator.stop()


def test_boto3_reaches_the_local_lambda_through_the_standard_endpoint_variable(local_lambda, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", local_lambda.url)
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    reply = client("lambda").invoke(FunctionName="bincounter", Payload=json.dumps({"image_b64": "%%"}))
    assert reply["StatusCode"] == 200 and "FunctionError" not in reply
    result = json.loads(reply["Payload"].read())
    assert result["statusCode"] == 400 and "not valid base64" in json.loads(result["body"])["error"]


def test_unknown_function_is_resource_not_found(local_lambda):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client("lambda", local_lambda.url).invoke(FunctionName="nope", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_function_arn_is_accepted_as_the_name(local_lambda):
    arn = "arn:aws:lambda:us-east-1:000000000000:function:bincounter:$LATEST"
    reply = client("lambda", local_lambda.url).invoke(FunctionName=arn, InvocationType="DryRun")
    assert reply["StatusCode"] == 204


def test_a_crashing_handler_is_reported_like_the_real_service(local_lambda):
    reply = client("lambda", local_lambda.url).invoke(FunctionName="crashes", Payload=b"{}")
    assert reply["StatusCode"] == 200 and reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Payload"].read())["errorType"] == "KeyError"


def test_payload_that_is_not_json_is_invalid_request_content(local_lambda):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client("lambda", local_lambda.url).invoke(FunctionName="bincounter", Payload=b"{not json")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"


@pytest.mark.slow
def test_aws_cli_lambda_invoke_counts_a_bin_through_the_whole_local_stack(runtime_emulator, bin_jpegs, tmp_path):
    env = {**os.environ, "ENDPOINT_NAME": ENDPOINT,
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_emulator.url}
    proc, url = spawn([sys.executable, "-m", "devtools.lambda_emulator", "--port", "0",
                       "--function", "bincounter=handler.lambda_handler"], {**env, "PYTHONPATH": str(ROOT)})
    try:
        event = tmp_path / "event.json"
        event.write_text(json.dumps(load_event("apigw-rest-v1", bin_jpegs[2])))
        out = tmp_path / "out.json"
        done = subprocess.run([AWS_CLI, "lambda", "invoke", "--endpoint-url", url,
                               "--function-name", "bincounter", "--payload", f"fileb://{event}", str(out)],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        stop_process(proc)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["StatusCode"] == 200
    result = json.loads(out.read_text())
    assert result["statusCode"] == 200, result["body"]
    body = json.loads(result["body"])
    assert body["count"] in range(1, 6)
    assert body["verification"]["verdict"] in {"match", "review", "mismatch"}
