"""Faults at botocore's own seam: a ``before-send`` hook on a boto3 session answers chosen S3
calls with the service's error response (or a body cut short) instead of sending them. Every
client the session makes afterwards, ours included, goes through it; nothing of ours is mocked."""

from __future__ import annotations

import io
import threading
import urllib.parse
from typing import Callable

from botocore.awsrequest import AWSResponse

ERRORS = {"SlowDown": (503, "Please reduce your request rate."),
          "InternalError": (500, "We encountered an internal error. Please try again.")}


class _Raw(io.BytesIO):
    """What botocore reads a response body from (``stream`` for errors, ``read`` for bodies)."""

    def stream(self, **_):
        yield self.getvalue()


def _error(url: str, code: str) -> AWSResponse:
    status, message = ERRORS[code]
    body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>fault</RequestId></Error>").encode()
    return AWSResponse(url, status, {"Content-Type": "application/xml", "Content-Length": str(len(body))},
                       _Raw(body))


def truncated(url: str, body: bytes) -> AWSResponse:
    """A 200 whose body ends halfway through what Content-Length promised."""
    return AWSResponse(url, 200, {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"},
                       _Raw(body[: len(body) // 2]))


class S3Faults:
    """``rule(key, attempt)`` -> an error code of ERRORS, "truncate" (with ``bodies``), or None to
    send the call; ``attempt`` counts from 1 per key (botocore's retries are new attempts)."""

    def __init__(self, rule: Callable[[str, int], str | None], operation: str = "GetObject",
                 bodies: dict[str, bytes] | None = None):
        self.rule, self.operation, self.bodies = rule, operation, bodies or {}
        self.attempts: dict[str, int] = {}
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()
        self._event = f"before-send.s3.{operation}"

    def __call__(self, request, **_):
        key = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path).lstrip("/").split("/", 1)[-1]
        with self._lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        what = self.rule(key, attempt)
        if what is None:
            return None
        with self._lock:
            self.injected[what] = self.injected.get(what, 0) + 1
        return truncated(request.url, self.bodies[key]) if what == "truncate" else _error(request.url, what)

    def on(self, session) -> "S3Faults":
        session.events.register(self._event, self, unique_id=f"fault-{id(self)}")
        return self

    def off(self, session) -> None:
        session.events.unregister(self._event, unique_id=f"fault-{id(self)}")
