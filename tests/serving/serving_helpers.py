"""Helpers for the serving tests: the OpenAPI check every response goes through, and
raw HTTP. A real ``serve`` process on loopback comes from ``devtools.local_serve``, the
hostile images from ``devtools.hostile_images``."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPResponse
from importlib import resources

from openapi_schema_validator import OAS31Validator

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
