"""Property tests: events of any shape against the Lambda's parser and its whole handler.

Events are the documented fixtures with random damage (any field replaced by any
JSON value, deleted, or given a hostile body, flag, header or query string), and
plain random JSON values. The parser answers an ImageRequest or a BadRequest
with a 4xx; the handler, run as the Lambda runtime runs it against the runtime
emulator and a real ``serve``, never answers 500 and never raises.
"""

from __future__ import annotations

import base64
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_budget import examples
from lambda_helpers import ENDPOINT, EVENTS, load_event

import handler
from lambda_events import BadRequest, ImageRequest, parse_event

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
FIXTURES = [load_event(p.stem, JPEG) for p in sorted(EVENTS.glob("*.json"))]
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\x00\x01\r\n\ud800"), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=25)
BASE64 = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
HOSTILE_VALUES = {
    "body": st.one_of(JSON_VALUES, TEXT, BASE64, st.just("[" * 100_000),
                      JSON_VALUES.map(json.dumps), JSON_VALUES.map(lambda v: json.dumps({"image_b64": v})),
                      st.just('{"image_b64": "' + base64.b64encode(JPEG).decode() + '", "expected_quantity": 1'
                              + "0" * 5000 + "}")),
    "isBase64Encoded": JSON_VALUES,
    "headers": st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["content-type", "Content-Type"]),
                                                      st.one_of(TEXT, JSON_VALUES, st.sampled_from(
                                                          ["application/json", "image/png", "text/json+json"])))),
    "queryStringParameters": st.one_of(JSON_VALUES, st.dictionaries(st.just("expected_quantity"), JSON_VALUES)),
    "rawQueryString": st.one_of(JSON_VALUES, TEXT.map(lambda t: "expected_quantity=" + t)),
    "httpMethod": JSON_VALUES,
    "requestContext": JSON_VALUES,
    "image_b64": st.one_of(JSON_VALUES, BASE64),
    "s3_uri": st.one_of(JSON_VALUES, TEXT.map(lambda t: "s3://" + t)),
    "expected_quantity": st.one_of(JSON_VALUES, TEXT, st.just("9" * 5000), st.just("\u00b2")),
    "content_type": st.one_of(JSON_VALUES, TEXT, st.just("image/jpeg\r\nX-Injected: 1")),
}


@st.composite
def events(draw):
    """A documented event with up to four random injuries, or any JSON value at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    event = copy.deepcopy(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 4))):
        target = event
        if isinstance(event.get("requestContext"), dict) and draw(st.booleans()):
            target = event["requestContext"]
            if isinstance(target.get("http"), dict) and draw(st.booleans()):
                target = target["http"]
        key = draw(st.sampled_from(sorted(HOSTILE_VALUES) + sorted(map(str, target))))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(HOSTILE_VALUES.get(key, JSON_VALUES))
    return event


@settings(max_examples=examples(3000), deadline=None)
@given(event=events())
def test_the_parser_answers_any_event_with_a_request_or_a_4xx_reason(event):
    try:
        request = parse_event(event)
    except BadRequest as exc:
        assert 400 <= exc.status < 500 and str(exc)
    else:
        assert isinstance(request, ImageRequest)
        assert request.image is not None or request.s3 is not None or request.method == "OPTIONS"


@pytest.mark.slow  # a real serve on the session's model behind the runtime emulator
@settings(max_examples=examples(1000), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=events())
def test_the_handler_never_answers_500_and_never_raises(event, runtime_emulator, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_emulator.url)
    monkeypatch.setenv("MAX_ATTEMPTS", "1")
    monkeypatch.setenv("READ_TIMEOUT_S", "30")
    reply = handler.lambda_handler(event, None)
    assert reply["statusCode"] in (200, 204) or 400 <= reply["statusCode"] < 500, reply
    if reply["statusCode"] >= 400:
        assert json.loads(reply["body"])["error"]


@settings(max_examples=examples(500), deadline=None)
@given(text=st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                      st.text(alphabet='[]{}"\\ab', max_size=80).map(str.encode)),
       limit=st.integers(0, 6))
def test_the_lambdas_copy_of_the_servers_depth_limit_agrees_with_it(text, limit):
    """lambda_events must stay stdlib-only, so it carries copies of codec's limits."""
    from bincounter.serving import codec, contract

    import lambda_events

    assert (lambda_events.MAX_JSON_DEPTH, lambda_events.MAX_QUANTITY) == (contract.MAX_JSON_DEPTH,
                                                                          contract.MAX_QUANTITY)
    assert lambda_events.json_depth_exceeds(text, limit) == codec.json_depth_exceeds(text, limit)
