"""Hostile inputs against the real ``serve`` process: each gets a 4xx with a JSON
reason, and the same server answers the next good request."""

from __future__ import annotations

import io
import json
import random
import socket
import time

import pytest
from PIL import Image
from serving_helpers import http, raw_http

from benchmarks.hostile_requests import KINDS, good_jpeg
from benchmarks.soak_serve import Tally, judge
from bincounter.serving.contract import MAX_BODY_BYTES
from devtools.hostile_images import jpeg_bomb
from devtools.local_serve import start_serve, stop

pytestmark = pytest.mark.slow


def _request(*headers: bytes, body: bytes = b"x") -> bytes:
    head = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _send(proc, url: str, kind: str, images: list[bytes]) -> None:
    """One seeded request of ``kind``, judged as ``make soak-serve`` judges it (an answer, never
    a 5xx, any 4xx with a JSON reason), and by its exact status and reason where it has one;
    then the same server answers a good request."""
    spec = KINDS[kind]
    raw = spec.make(random.Random(sum(map(ord, kind))), images)
    tally = Tally()
    judge(tally, "hostile", kind, int(url.rsplit(":", 1)[1]), raw)
    assert tally.failures == [], tally.failures
    if spec.status is not None:
        reply = raw_http(url, raw)
        assert reply.status == spec.status, reply.body[:300]
        assert reply.content_type == "application/json"
        assert spec.words.lower() in reply.json()["error"].lower(), reply.json()
    _answers_the_next_good_request(proc, url)


def _answers_the_next_good_request(proc, url) -> None:
    follow_up = http(url, "/invocations", good_jpeg(), {"Content-Type": "image/jpeg"})
    assert follow_up.status == 200 and "count" in follow_up.json()
    assert proc.poll() is None


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_hostile_kind_gets_a_json_4xx_never_a_5xx_and_the_server_keeps_serving(live_server, kind, bin_jpegs):
    _send(*live_server, kind, list(bin_jpegs.values()))


def test_a_jpeg_bomb_is_small_on_the_wire_and_large_in_pixels():
    """What the header check must catch before decoding: 8000x8000 would be 192 MB of RGB."""
    bomb = jpeg_bomb()
    assert len(bomb) < MAX_BODY_BYTES and Image.open(io.BytesIO(bomb)).size == (8000, 8000)


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


@pytest.mark.parametrize("kind", [k for k, spec in KINDS.items() if spec.parser])
def test_a_head_the_parser_refuses_gets_the_same_json_4xx_from_each_worker_class(any_worker_server, kind, bin_jpegs):
    _send(*any_worker_server, kind, list(bin_jpegs.values()))


@pytest.mark.parametrize("sent", [b"POST /invocations HTTP/1.1\r\nContent-Ty",
                                  _request(b"Content-Type: image/jpeg", body=good_jpeg())[:-100]],
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
