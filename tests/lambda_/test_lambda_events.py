"""The Lambda's event contract and its 4xx answers for bad input (no endpoint is reached)."""

from __future__ import annotations

import base64
import json

import pytest
from lambda_helpers import ENDPOINT, client, load_event

import handler
from lambda_events import MAX_IMAGE_BYTES, BadRequest, parse_event

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize("name, kind", [("apigw-rest-v1", "apigw-rest"), ("apigw-http-v2", "apigw-http"),
                                        ("function-url", "function-url"), ("direct-image", "direct")])
def test_each_documented_event_shape_yields_image_type_and_quantity(name, kind):
    request = parse_event(load_event(name, JPEG))
    assert (request.kind, request.image, request.content_type, request.expected_quantity) == \
        (kind, JPEG, "image/jpeg", 3)


def test_s3_event_yields_a_reference_not_bytes():
    request = parse_event(load_event("direct-s3"))
    assert request.image is None and request.s3.uri == "s3://bincounter-test/incoming/bin.jpg"
    assert request.expected_quantity == 3


def test_json_body_through_the_gateway_is_read_like_a_direct_invocation():
    event = load_event("apigw-http-v2")
    event.update(body=json.dumps({"image_b64": base64.b64encode(PNG).decode(), "expected_quantity": 2}),
                 isBase64Encoded=False, headers={"content-type": "application/json"})
    request = parse_event(event)
    assert (request.image, request.content_type, request.expected_quantity) == (PNG, "image/png", 2)


def test_octet_stream_body_is_sent_on_with_the_sniffed_image_type():
    event = load_event("function-url", PNG)
    event["headers"]["content-type"] = "application/octet-stream"
    assert parse_event(event).content_type == "image/png"


def test_rest_headers_are_matched_whatever_their_case():
    event = load_event("apigw-rest-v1", PNG)
    event["headers"] = {"CONTENT-TYPE": "image/png"}
    assert parse_event(event).content_type == "image/png"


def test_quantity_from_the_raw_query_string_when_parameters_are_absent():
    event = load_event("function-url", JPEG)
    del event["queryStringParameters"]
    event["rawQueryString"] = "expected_quantity=4"
    assert parse_event(event).expected_quantity == 4


def _too_big():
    return {"image_b64": base64.b64encode(b"\xff\xd8\xff" + b"\x00" * MAX_IMAGE_BYTES).decode()}


def _text_body():
    event = load_event("apigw-rest-v1")
    event.update(body="\ufffd\ufffdJFIF", isBase64Encoded=False)
    return event


def _with(name, **changes):
    event = load_event(name, JPEG)
    event.update(changes)
    return event


BAD = [
    ("no image in a direct call", {"expected_quantity": 3}, 400, "no image"),
    ("empty body", _with("apigw-http-v2", body=""), 400, "body is empty"),
    ("bad base64", {"image_b64": "not base64 at all!"}, 400, "not valid base64"),
    ("over 6 MB", _too_big(), 400, "limit is 6291456"),
    ("binary sent as text", _text_body(), 400, "binary media types"),
    ("quantity not a number", {"image_b64": "/9j/", "expected_quantity": "three"}, 400, "whole number"),
    ("quantity a boolean", {"image_b64": "/9j/", "expected_quantity": True}, 400, "whole number"),
    ("negative quantity", {"image_b64": "/9j/", "expected_quantity": -1}, 400, "0..999999999"),
    ("quantity of 5000 digits", {"image_b64": "/9j/", "expected_quantity": "9" * 5000}, 400, "whole number"),
    ("both inputs", {"image_b64": "/9j/", "s3_uri": "s3://b/k"}, 400, "not both"),
    ("s3 uri without key", {"s3_uri": "s3://bucket-only"}, 400, "s3://bucket/key"),
    ("unknown event", {"Records": [{"eventSource": "aws:sqs"}]}, 400, "unsupported event"),
    ("not an object", ["image"], 400, "JSON object"),
    ("GET", _with("apigw-rest-v1", httpMethod="GET"), 405, "POST"),
    ("text/plain body", _with("function-url", headers={"content-type": "text/plain"}), 415, "Content-Type"),
    ("bad JSON body", _with("apigw-http-v2", body="{", isBase64Encoded=False,
                            headers={"content-type": "application/json"}), 400, "not valid JSON"),
    # each of these was a 500 "internal error" before
    ("headers not an object", _with("apigw-rest-v1", headers="image/jpeg"), 400, "headers must be an object"),
    ("query parameters not an object", _with("function-url", queryStringParameters=["expected_quantity", 3]),
     400, "queryStringParameters must be an object"),
    ("method not a string", _with("apigw-rest-v1", httpMethod=["POST"]), 400, "httpMethod must be a string"),
    ("JSON body marked base64 that is not", _with("apigw-http-v2", body='{"image_b64": "x"}', isBase64Encoded=True,
                                                  headers={"content-type": "application/json"}),
     400, "body (marked base64) is not valid base64"),
    ("body not a string", _with("function-url", body={"image_b64": "/9j/"}), 400, "body must be a string"),
    ("isBase64Encoded not a boolean", _with("function-url", isBase64Encoded="yes"), 400, "true or false"),
    ("JSON body nested 100,000 deep", _with("apigw-http-v2", body="[" * 100_000, isBase64Encoded=False,
                                            headers={"content-type": "application/json"}), 400, "levels deep"),
    ("content_type with a line break", {"image_b64": "/9j/", "content_type": "image/jpeg\r\nX-Evil: 1"},
     415, "unsupported Content-Type"),
]


@pytest.mark.parametrize("why, event, status, reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_its_status_and_a_json_reason_without_calling_the_endpoint(why, event, status, reason):
    # The client points at a closed port: a call to it would end as 502, not as the 4xx asserted.
    settings = handler.Settings(ENDPOINT, max_attempts=1, connect_timeout=0.5)
    runtime = client("sagemaker-runtime", "http://127.0.0.1:9", settings)
    reply = handler.handle(event, runtime, None, settings)
    assert reply["statusCode"] == status
    assert reason in json.loads(reply["body"])["error"]
    assert reply["headers"]["Content-Type"] == "application/json"


def test_parse_error_names_the_problem():
    with pytest.raises(BadRequest, match="image_b64 is not valid base64"):
        parse_event({"image_b64": "%%%"})


def test_a_misplaced_image_is_not_echoed_back_in_the_error():
    blob = base64.b64encode(JPEG).decode()
    reason = str(pytest.raises(BadRequest, parse_event, {"image_b64": "/9j/", "expected_quantity": blob}).value)
    assert "whole number" in reason and len(reason) < 120
