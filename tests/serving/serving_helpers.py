"""Helpers for the serving tests: the OpenAPI check every response goes through,
and generated images (good and hostile). A real ``serve`` process on loopback
comes from ``devtools.local_serve``."""

from __future__ import annotations

import io
import json
import socket
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPResponse
from importlib import resources

from openapi_schema_validator import OAS31Validator
from PIL import Image

OPENAPI = json.loads(resources.files("bincounter.serving").joinpath("openapi.json").read_text())


def check_openapi(path: str, method: str, status: int, content_type: str | None, body: bytes) -> None:
    """Fail unless the response is one the OpenAPI document describes, body included."""
    op = OPENAPI["paths"][path][method.lower()]
    assert str(status) in op["responses"], f"{method} {path} -> {status} is not in openapi.json"
    content = op["responses"][str(status)].get("content")
    if not content:
        assert body == b"", f"{method} {path} -> {status} documents no body, got {body[:100]!r}"
        return
    mimetype = (content_type or "").split(";")[0].strip()
    assert mimetype in content, f"{method} {path} -> {status} as {mimetype!r} is not in openapi.json"
    if mimetype == "application/jsonlines":
        docs = [json.loads(line) for line in body.decode().splitlines()]
        schema = {"$ref": "#/components/schemas/Record"}
    else:
        docs = [json.loads(body)]
        schema = content[mimetype]["schema"]
    validator = OAS31Validator({**schema, "components": OPENAPI["components"]})
    for doc in docs:
        validator.validate(doc)


@dataclass
class Reply:
    status: int
    content_type: str | None
    body: bytes
    headers: dict

    def json(self):
        return json.loads(self.body)


def http(url: str, path: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30.0) -> Reply:
    """One real HTTP request; the reply is checked against openapi.json."""
    req = urllib.request.Request(url + path, data=body, headers=headers or {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            reply = Reply(r.status, r.headers.get("Content-Type"), r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        reply = Reply(e.code, e.headers.get("Content-Type"), e.read(), dict(e.headers))
    check_openapi(path, req.get_method(), reply.status, reply.content_type, reply.body)
    return reply


def raw_http(url: str, request: bytes, path: str = "/invocations", method: str = "POST",
             timeout: float = 30.0) -> Reply:
    """Send ``request`` byte for byte (what urllib refuses to send); the reply is checked
    against openapi.json as ``method path``."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        r = HTTPResponse(sock)
        r.begin()
        reply = Reply(r.status, r.headers.get("Content-Type"), r.read(), dict(r.headers))
    check_openapi(path, method, reply.status, reply.content_type, reply.body)
    return reply


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG header (valid CRC) that declares width x height, plus a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def jpeg_bomb(side: int = 8000) -> bytes:
    """A real, complete JPEG of side x side pixels that compresses to a few hundred KB."""
    return encode(Image.new("L", (side, side), 128), "JPEG", quality=10)


def call(client, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
    """One request through Flask's test client; the reply is checked against openapi.json."""
    if body is None:
        r = client.get(path, headers=headers or {})
    else:
        r = client.post(path, data=body, headers=headers or {})
    reply = Reply(r.status_code, r.headers.get("Content-Type"), r.get_data(), dict(r.headers))
    check_openapi(path, "GET" if body is None else "POST", reply.status, reply.content_type, reply.body)
    return reply


def loaded_app(settings):
    """``create_app`` with the model load finished (it starts in a background thread)."""
    from bincounter.serving.app import create_app

    app = create_app(settings)
    assert app.extensions["bincounter.model"].wait(60), "model did not finish loading in 60 s"
    return app
