"""Error mapping: what the caller sees when the endpoint, the model server or S3 says no."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from devtools.local_serve import free_port
from lambda_helpers import ENDPOINT, client, load_event

import handler
from devtools.runtime_emulator import RuntimeEmulator


def _event(image: bytes, quantity: int | None = None) -> dict:
    event = {"image_b64": base64.b64encode(image).decode()}
    if quantity is not None:
        event["expected_quantity"] = quantity
    return event


def _error(reply: dict) -> str:
    assert reply["headers"]["Content-Type"] == "application/json"
    return json.loads(reply["body"])["error"]


@pytest.fixture
def emulator_without_server():
    """The runtime emulator whose endpoint ``bincounter`` forwards to a closed port."""
    emulator = RuntimeEmulator({ENDPOINT: f"http://127.0.0.1:{free_port()}"}).start()
    yield emulator
    emulator.stop()


@pytest.mark.slow
@pytest.mark.parametrize("event_of, status, reason", [
    (lambda imgs: _event(imgs[3], 9), 400, "outside the counts this model knows"),
    (lambda imgs: _event(b"\xff\xd8\xff" + b"\x00" * 200), 400, "not a decodable image"),
    (lambda imgs: _event(b"GIF89a" + b"\x00" * 200), 400, "not a decodable image"),
], ids=["quantity out of range", "corrupt jpeg", "corrupt other image"])
def test_model_server_4xx_reaches_the_caller_with_its_status_and_reason(
        event_of, status, reason, runtime_client, settings, bin_jpegs):
    reply = handler.handle(event_of(bin_jpegs), runtime_client, None, settings)
    assert reply["statusCode"] == status
    assert reason in _error(reply)


def test_unknown_endpoint_is_a_502_naming_it():
    emulator = RuntimeEmulator({}).start()
    try:
        settings = handler.Settings("no-such-endpoint", max_attempts=1)
        reply = handler.handle(_event(b"\xff\xd8\xff"), client("sagemaker-runtime", emulator.url, settings),
                               None, settings)
    finally:
        emulator.stop()
    assert reply["statusCode"] == 502
    assert "ValidationError" in _error(reply) and "no-such-endpoint" in _error(reply)


def test_model_server_down_is_a_502(emulator_without_server):
    settings = handler.Settings(ENDPOINT, max_attempts=1)
    runtime = client("sagemaker-runtime", emulator_without_server.url, settings)
    reply = handler.handle(_event(b"\xff\xd8\xff"), runtime, None, settings)
    assert reply["statusCode"] == 502
    assert "model server error" in _error(reply)


def test_throttling_is_retried_by_botocore_then_answered_429(emulator_without_server):
    settings = handler.Settings(ENDPOINT, max_attempts=2)
    emulator_without_server.throttle(ENDPOINT, times=3)
    runtime = client("sagemaker-runtime", emulator_without_server.url, settings)
    reply = handler.handle(_event(b"\xff\xd8\xff"), runtime, None, settings)
    assert reply["statusCode"] == 429
    assert "throttling" in _error(reply)
    # exactly two attempts in all (MAX_ATTEMPTS counts the first): one throttled answer is left
    assert emulator_without_server.take_throttle(ENDPOINT)
    assert not emulator_without_server.take_throttle(ENDPOINT)


def test_an_endpoint_that_never_answers_is_a_504_after_the_read_timeout():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never replies
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = handler.Settings(ENDPOINT, max_attempts=1, read_timeout=0.5)
        reply = handler.handle(_event(b"\xff\xd8\xff"), client("sagemaker-runtime", url, settings),
                               None, settings)
    assert reply["statusCode"] == 504
    assert "did not answer within 0.5 s" in _error(reply)


def test_nothing_listening_is_a_502():
    settings = handler.Settings(ENDPOINT, max_attempts=1, connect_timeout=0.5)
    runtime = client("sagemaker-runtime", f"http://127.0.0.1:{free_port()}", settings)
    reply = handler.handle(_event(b"\xff\xd8\xff"), runtime, None, settings)
    assert reply["statusCode"] == 502 and "cannot reach the endpoint" in _error(reply)


@pytest.mark.slow  # moto's S3
@pytest.mark.parametrize("uri, prefix, status, reason", [
    ("s3://bincounter-test/private/bin.jpg", "s3://bincounter-test/incoming/", 403, "must be under"),
    ("s3://bincounter-test/incoming/missing.jpg", "s3://bincounter-test/incoming/", 404, "no such S3 object"),
    ("s3://bincounter-test/incoming/bin.jpg", None, 400, "not enabled"),
], ids=["outside the prefix", "missing object", "s3 input disabled"])
def test_s3_input_refusals(uri, prefix, status, reason, bins_bucket, emulator_without_server):
    settings = handler.Settings(ENDPOINT, max_attempts=1, s3_allowed_prefix=prefix)
    runtime = client("sagemaker-runtime", emulator_without_server.url, settings)
    reply = handler.handle({"s3_uri": uri}, runtime, bins_bucket, settings)
    assert reply["statusCode"] == status
    assert reason in _error(reply)


def test_missing_endpoint_name_is_a_500_saying_so():
    reply = handler.lambda_handler(load_event("direct-image", b"\xff\xd8\xff"), None)
    assert reply["statusCode"] == 500
    assert "ENDPOINT_NAME is not set" in _error(reply)


def test_preflight_gets_cors_headers_and_no_endpoint_call(monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "*")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{free_port()}")
    event = load_event("apigw-http-v2")
    event["requestContext"]["http"]["method"] = "OPTIONS"
    reply = handler.lambda_handler(event, None)
    assert reply["statusCode"] == 204
    assert reply["headers"]["Access-Control-Allow-Origin"] == "*"


def test_a_bad_timeout_setting_is_a_500_naming_it(monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("READ_TIMEOUT_S", "soon")
    reply = handler.lambda_handler(load_event("direct-image", b"\xff\xd8\xff"), None)
    assert reply["statusCode"] == 500
    assert "bad timeout / attempts setting" in _error(reply) and "soon" in _error(reply)
