"""Hostile inputs against the real ``serve`` process: each gets a 4xx with a JSON
reason, and the same server answers the next good request."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from PIL import Image
from serving_helpers import encode, http, jpeg_bomb, png_declaring

from bincounter.serving.contract import MAX_BODY_BYTES

pytestmark = pytest.mark.slow


def _good_jpeg() -> bytes:
    return encode(Image.new("RGB", (320, 240), (90, 140, 200)), "JPEG", quality=90)


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
