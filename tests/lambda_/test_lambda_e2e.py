"""Every event type through real boto3 clients -> runtime emulator -> the real ``serve``."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from lambda_helpers import ENDPOINT, load_event

import handler
from bincounter.modelcard import ModelCard

pytestmark = pytest.mark.slow


def _check_prediction(body: dict, expected_quantity: int, card: ModelCard) -> None:
    assert body["count"] in card.classes
    assert set(body["probabilities"]) == {str(c) for c in card.classes}
    verification = body["verification"]
    assert verification["expected_quantity"] == expected_quantity
    assert verification["match_probability"] == body["probabilities"][str(expected_quantity)]
    assert verification["verdict"] == card.verification.verdict(verification["match_probability"],
                                                                expected_quantity)


@pytest.mark.parametrize("name", ["apigw-rest-v1", "apigw-http-v2", "function-url", "direct-image"])
def test_each_event_type_comes_back_with_a_count_and_a_verdict(name, runtime_client, settings,
                                                               bin_jpegs, trained_model):
    reply = handler.handle(load_event(name, bin_jpegs[3]), runtime_client, None, settings)
    assert reply["statusCode"] == 200, reply["body"]
    assert reply["headers"]["Content-Type"] == "application/json"
    _check_prediction(json.loads(reply["body"]), 3, ModelCard.read(trained_model))


def test_without_expected_quantity_there_is_a_count_and_no_verdict(runtime_client, settings, bin_jpegs):
    event = {"image_b64": base64.b64encode(bin_jpegs[2]).decode()}
    body = json.loads(handler.handle(event, runtime_client, None, settings)["body"])
    assert body["count"] in range(1, 6) and "verification" not in body


def test_s3_uri_under_the_allowed_prefix_is_read_and_counted(runtime_client, bins_bucket, moto_server,
                                                             trained_model):
    settings = handler.Settings(ENDPOINT, max_attempts=1, s3_allowed_prefix="s3://bincounter-test/incoming/")
    reply = handler.handle(load_event("direct-s3"), runtime_client, bins_bucket, settings)
    assert reply["statusCode"] == 200, reply["body"]
    _check_prediction(json.loads(reply["body"]), 3, ModelCard.read(trained_model))


def test_lambda_handler_reaches_the_emulator_through_the_standard_endpoint_variable(
        runtime_emulator, bin_jpegs, monkeypatch, trained_model):
    # no endpoint_url anywhere in the handler: botocore reads AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_emulator.url)
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "https://ops.example.com")
    reply = handler.lambda_handler(load_event("function-url", bin_jpegs[4]), None)
    assert reply["statusCode"] == 200, reply["body"]
    assert reply["headers"]["Access-Control-Allow-Origin"] == "https://ops.example.com"
    assert reply["headers"]["Access-Control-Allow-Methods"] == "POST,OPTIONS"
    _check_prediction(json.loads(reply["body"]), 3, ModelCard.read(trained_model))


def test_one_structured_log_line_per_call_and_no_image_bytes(runtime_client, settings, bin_jpegs, caplog):
    event = load_event("apigw-http-v2", bin_jpegs[5])
    with caplog.at_level(logging.INFO, logger="bincounter.lambda"):
        handler.handle(event, runtime_client, None, settings, request_id="req-1")
    records = [r for r in caplog.records if r.name == "bincounter.lambda"]
    assert len(records) == 1
    line = json.loads(records[0].getMessage())
    assert line == {**line, "request_id": "req-1", "endpoint": ENDPOINT, "kind": "apigw-http",
                    "status": 200, "content_type": "image/jpeg", "image_bytes": len(bin_jpegs[5]),
                    "expected_quantity": 3}
    assert event["body"][:64] not in records[0].getMessage()
