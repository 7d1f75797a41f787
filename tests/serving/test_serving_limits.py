"""Limits on request bodies and gunicorn's refusals, without a model: nesting depth
measured on the raw bytes, every body of any shape mapped to a 4xx of the error
table, and the workers' status for each of gunicorn's parse errors."""

from __future__ import annotations

import json

import pytest
from gunicorn.http import errors as gerrors
from hypothesis import given, settings
from hypothesis import strategies as st
from property_budget import examples

from bincounter.serving.codec import (
    decode_request,
    json_depth_exceeds,
    quantity_from_attributes,
)
from bincounter.serving.contract import MAX_JSON_DEPTH, REQUEST_TYPES
from bincounter.serving.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedContentType,
    status_for,
)
from bincounter.serving.workers import INTERNAL, json_error, refusal

# strings full of what could fool a bracket counter: brackets, quotes, escapes
TRICKY = st.text(alphabet='[]{}"\\/ab \n\u00e9', max_size=12)
JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=60)


def depth(doc) -> int:
    if isinstance(doc, list):
        return 1 + max(map(depth, doc), default=0)
    if isinstance(doc, dict):
        return 1 + max(map(depth, doc.values()), default=0)
    return 0


@settings(max_examples=examples(600), deadline=None)
@given(doc=JSON_DOCS, limit=st.integers(0, 8), ascii_only=st.booleans())
def test_depth_on_the_raw_bytes_equals_the_parsed_documents_depth(doc, limit, ascii_only):
    text = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert json_depth_exceeds(text, limit) == (depth(doc) > limit)


def test_a_body_nested_a_million_deep_is_refused_before_the_parser_recurses():
    # json.loads itself would raise RecursionError (a 500) long before this depth
    with pytest.raises(BadRequest, match=f"more than {MAX_JSON_DEPTH} levels deep"):
        decode_request("application/json", b"[" * 1_000_000)
    nested_just_enough = b'{"image": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    with pytest.raises(BadRequest, match="base64 string"):  # past the depth check, refused for its type
        decode_request("application/json", nested_just_enough)


FOUR_XX = (BadRequest, PayloadTooLarge, UnsupportedContentType)


@settings(max_examples=examples(800), deadline=None)
@given(content_type=st.sampled_from(REQUEST_TYPES[3:] + ("text/csv", "")),
       body=st.one_of(st.binary(max_size=300),
                      JSON_DOCS.map(lambda d: json.dumps(d).encode()),
                      st.lists(JSON_DOCS.map(json.dumps), max_size=5).map(lambda ls: "\n".join(ls).encode()),
                      st.builds(lambda q: json.dumps({"image": "", "expected_quantity": q}).encode(),
                                JSON_DOCS)),
       header=st.none() | st.text(max_size=40).map(lambda t: "expected_quantity=" + t))
def test_any_json_body_is_either_instances_or_a_4xx_of_the_table(content_type, body, header):
    try:
        quantity = quantity_from_attributes(header)
        instances, _ = decode_request(content_type, body, quantity)
    except FOUR_XX as exc:
        assert 400 <= status_for(exc) < 500 and str(exc)
    else:
        assert instances and all(isinstance(i.image, bytes) for i in instances)


@pytest.mark.parametrize("exc, status", [
    (gerrors.InvalidHeader("CONTENT-TYPE"), 400),
    (gerrors.InvalidHeaderName("X\x01"), 400),
    (gerrors.InvalidRequestLine("GET"), 400),
    (gerrors.InvalidRequestMethod("G\x00T"), 400),
    (gerrors.InvalidHTTPVersion("HTTP/9"), 400),
    (gerrors.LimitRequestLine(9000, 4094), 400),
    (gerrors.LimitRequestHeaders("too many"), 431),
    (gerrors.ExpectationFailed("200-ok"), 417),
    (gerrors.UnsupportedTransferCoding("bogus"), 400),  # gunicorn: 501
    (gerrors.ConfigurationProblem("SCRIPT_NAME"), 400),  # gunicorn: 500
    (RequestTimeout("not within 10 s"), 408),
])
def test_each_refusal_of_gunicorns_parser_is_a_4xx_with_its_reason(exc, status):
    got, reason = refusal(exc)
    assert got == status and reason
    head, _, body = json_error(got, reason).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": reason}


def test_a_failure_that_is_not_a_refusal_stays_a_500_without_details():
    assert refusal(KeyError("secret")) == (500, INTERNAL)


@pytest.mark.parametrize("exc, status", [(PayloadTooLarge("129 instances"), 413),
                                         (RequestTimeout("10 s"), 408)])
def test_the_error_table_maps_the_new_limits(exc, status):
    assert status_for(exc) == status
