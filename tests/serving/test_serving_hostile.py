"""Hostile inputs against the real ``serve`` process: each gets a 4xx with a JSON
reason, and the same server answers the next good request."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import socket
import time

import pytest
from PIL import Image
from serving_helpers import http, raw_http

from benchmarks.hostile_requests import KINDS
from benchmarks.soak_serve import Tally, judge
from bincounter.serving.contract import MAX_BODY_BYTES, MAX_INSTANCES, MAX_JSON_DEPTH
from devtools.hostile_images import encode, jpeg_bomb, png_declaring
from devtools.local_serve import start_serve, stop

pytestmark = pytest.mark.slow


def _good_jpeg() -> bytes:
    return encode(Image.new("RGB", (320, 240), (90, 140, 200)), "JPEG", quality=90)


def _pixel_instances(limit: int = MAX_BODY_BYTES) -> list[str]:
    """As many one-pixel PNG instances as fit a body of ``limit`` bytes (about 57,000)."""
    line = json.dumps({"image": base64.b64encode(encode(Image.new("RGB", (1, 1)), "PNG")).decode()})
    return [line] * ((limit - 20) // (len(line) + 2))


def _deep(levels: int) -> bytes:
    return b'{"image": ' + b"[" * levels + b"]" * levels + b"}"


HOSTILE = {
    # name: (content type, body factory, status, words the reason must contain)
    "truncated jpeg": ("image/jpeg", lambda: _good_jpeg()[: len(_good_jpeg()) // 2], 400, "truncated"),
    "zero-byte body": ("image/jpeg", lambda: b"", 400, "empty"),
    "png declaring 50000x50000": ("image/png", lambda: png_declaring(50_000, 50_000), 413, "pixels"),
    "jpeg bomb 8000x8000": ("image/jpeg", jpeg_bomb, 413, "pixels"),
    "random bytes as image/jpeg": ("image/jpeg", lambda: os.urandom(4096), 400, "not a decodable image"),
    "6 MB + 1 byte": ("image/jpeg", lambda: b"\xff" * (MAX_BODY_BYTES + 1), 413, "6291456"),
    "invalid base64": ("application/json", lambda: b'{"image": "not*base64!"}', 400, "base64"),
    "json without image": ("application/json", lambda: b'{"picture": "abc"}', 400, "image"),
    "broken json": ("application/json", lambda: b'{"image": ', 400, "JSON"),
    "json batch with one bad image": (
        "application/json",
        lambda: json.dumps({"instances": [{"image": base64.b64encode(_good_jpeg()).decode()},
                                          {"image": base64.b64encode(b"junk").decode()}]}).encode(),
        400, "instance 1"),
    "json nested 100,000 deep": ("application/json", lambda: _deep(100_000), 400, "levels deep"),
    "json one level too deep": ("application/json", lambda: _deep(MAX_JSON_DEPTH), 400, "levels deep"),
    "jsonlines line nested deep": (
        "application/jsonlines",
        lambda: (json.dumps({"image": base64.b64encode(_good_jpeg()).decode()}) + "\n").encode() + _deep(5000),
        400, "line 2 nests"),
    "a number of 5,000 digits": ("application/json", lambda: b'{"image": "", "expected_quantity": 1'
                                 + b"0" * 5000 + b"}", 400, "too many digits"),
    "one instance over the limit": (
        "application/json",
        lambda: json.dumps({"instances": [{"image": base64.b64encode(_good_jpeg()).decode()}]
                            * (MAX_INSTANCES + 1)}).encode(),
        413, f"at most {MAX_INSTANCES}"),
    "6 MB of one-pixel instances": (
        "application/json", lambda: ('{"instances": [' + ", ".join(_pixel_instances()) + "]}").encode(),
        413, f"at most {MAX_INSTANCES}"),
    "6 MB of one-pixel jsonlines": (
        "application/jsonlines", lambda: "\n".join(_pixel_instances()).encode(), 413, "lines; at most"),
    "jsonlines with a bad line": (
        "application/jsonlines",
        lambda: (json.dumps({"image": base64.b64encode(_good_jpeg()).decode()}) + "\n{oops\n").encode(),
        400, "line 2"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gets_a_json_4xx_and_the_server_keeps_serving(live_server, name):
    proc, url = live_server
    content_type, make_body, status, words = HOSTILE[name]
    reply = http(url, "/invocations", make_body(), {"Content-Type": content_type})
    assert reply.status == status, reply.body[:300]
    assert reply.content_type == "application/json"
    assert words.lower() in reply.json()["error"].lower(), reply.json()
    follow_up = http(url, "/invocations", _good_jpeg(), {"Content-Type": "image/jpeg"})
    assert follow_up.status == 200 and "count" in follow_up.json()
    assert proc.poll() is None


def test_a_jpeg_bomb_is_refused_by_the_header_check_before_decoding(live_server):
    """8000x8000 would be 192 MB of RGB: the reason names the declared size and the limit."""
    _, url = live_server
    bomb = jpeg_bomb()
    assert len(bomb) < MAX_BODY_BYTES and Image.open(io.BytesIO(bomb)).size == (8000, 8000)
    reply = http(url, "/invocations", bomb, {"Content-Type": "image/jpeg"})
    assert reply.status == 413
    assert "8000x8000 = 64000000 pixels, limit is 40000000" in reply.json()["error"]


def _request(*headers: bytes, body: bytes = b"x") -> bytes:
    head = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


HEADER_HOSTILE = {
    # name: (raw request, status, words the reason must contain); gunicorn's parser refuses
    # all but the last before the app runs: each used to get an HTML page (or a 501 / 500)
    "control character in Content-Type": (_request(b"Content-Type: image/jpeg\x01"), 400, "CONTENT-TYPE"),
    "control character in Accept": (_request(b"Content-Type: image/jpeg", b"Accept: application/json\x1b"),
                                    400, "ACCEPT"),
    "DEL in the custom attributes": (_request(b"X-Amzn-SageMaker-Custom-Attributes: expected_quantity=3\x7f"),
                                     400, "X-AMZN-SAGEMAKER-CUSTOM-ATTRIBUTES"),
    "Content-Length not a number": (b"POST /invocations HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", 400,
                                    "CONTENT-LENGTH"),
    "unknown Transfer-Encoding (gunicorn: 501)": (
        b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: bogus\r\n\r\n", 400, "transfer coding"),
    "SCRIPT_NAME not prefixing the path (gunicorn: 500)": (_request(b"SCRIPT_NAME: /elsewhere"), 400,
                                                           "SCRIPT_NAME"),
    "200 headers": (_request(*[b"X-Padding-%d: x" % i for i in range(200)]), 431, "header"),
    # refused by gunicorn while the app reads the body: was a 500 from the app's error table
    "chunked body with a Content-Length trailer": (
        b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: image/jpeg\r\n\r\n"
        b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", 400, "CONTENT-LENGTH"),
    "quantity in superscript digits": (
        _request(b"Content-Type: image/jpeg", "X-Amzn-SageMaker-Custom-Attributes: expected_quantity=\u00b2"
                 .encode("latin-1")), 400, "expected_quantity"),
}


@pytest.fixture(scope="module", params=["sync", "gthread"])
def any_worker_server(request, trained_model, tmp_path_factory):
    """``serve`` with each worker class (1 or 2 threads) and a 2 s read deadline."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc, url = start_serve(trained_model, log, MODEL_SERVER_READ_DEADLINE="2",
                            MODEL_SERVER_THREADS="1" if request.param == "sync" else "2")
    try:
        yield proc, url
    finally:
        stop(proc)


def _answers_the_next_good_request(proc, url) -> None:
    follow_up = http(url, "/invocations", _good_jpeg(), {"Content-Type": "image/jpeg"})
    assert follow_up.status == 200 and "count" in follow_up.json()
    assert proc.poll() is None


@pytest.mark.parametrize("name", list(HEADER_HOSTILE))
def test_a_header_the_parser_refuses_gets_the_same_json_4xx(any_worker_server, name):
    proc, url = any_worker_server
    request, status, words = HEADER_HOSTILE[name]
    reply = raw_http(url, request)
    assert reply.status == status, reply.body[:300]
    assert reply.content_type == "application/json"
    assert words.lower() in reply.json()["error"].lower(), reply.json()
    _answers_the_next_good_request(proc, url)


@pytest.mark.parametrize("sent", [b"POST /invocations HTTP/1.1\r\nContent-Ty",
                                  _request(b"Content-Type: image/jpeg", body=_good_jpeg())[:-100]],
                         ids=["half a header", "half a body"])
def test_a_stalled_request_gets_a_408_at_the_read_deadline(any_worker_server, sent):
    """The client sends part of a request and stops: the worker answers 408 after 2 s
    instead of waiting for gunicorn's 60 s timeout to kill it."""
    proc, url = any_worker_server
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(sent)
        answer = sock.makefile("rb").read()
    waited = time.monotonic() - start
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"application/json" in head and "2 s" in json.loads(body)["error"]
    assert 1.5 < waited < 10, waited
    _answers_the_next_good_request(proc, url)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_the_soak_sends_gets_an_answer_never_a_5xx_and_4xx_with_a_json_reason(live_server, kind,
                                                                                          bin_jpegs):
    """``make soak-serve``'s own kinds and its own judgement, one request of each (seeded)."""
    proc, url = live_server
    tally = Tally()
    raw = KINDS[kind](random.Random(sum(map(ord, kind))), list(bin_jpegs.values()))
    judge(tally, "hostile", kind, int(url.rsplit(":", 1)[1]), raw)
    assert tally.failures == [], tally.failures
    follow_up = http(url, "/invocations", _good_jpeg(), {"Content-Type": "image/jpeg"})
    assert follow_up.status == 200 and proc.poll() is None
