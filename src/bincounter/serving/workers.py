"""gunicorn workers that refuse what gunicorn's HTTP parser refuses in our error shape.

gunicorn parses the request line and headers before the app sees anything, and
answers a request it cannot parse (a control character in a header value, a bad
``Content-Length``, an unknown ``Transfer-Encoding``, a bad method, too many
headers) from ``Worker.handle_error`` with an HTML page. These workers answer
the same refusals as ``{"error": "<reason>"}`` with a 4xx, like every other
failure of the server. Two of gunicorn's answers are 5xx for a client's input
(501 for an unknown transfer coding, 500 for a ``SCRIPT_NAME`` that does not
prefix the path): both are 400 here. An exception that is not a refusal of the
request is still our bug: 500, logged with its traceback.

They also bound the time a client may take to send one request
(``MODEL_SERVER_READ_DEADLINE``, head and body together): a
sync worker serves one connection at a time, so a client that sends half a
request and stalls would otherwise hold the worker until gunicorn's 60 s
timeout kills it. Past the deadline the client gets a 408.
"""

from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus

from gunicorn import util
from gunicorn.http.errors import (ExpectationFailed, ForbiddenProxyRequest, LimitRequestHeaders,
                                  ParseException)
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from bincounter.serving.errors import RequestTimeout
from bincounter.serving.settings import ServeSettings

log = logging.getLogger(__name__)

# gunicorn's own status where it is a 4xx; every other parse failure is a 400
_STATUS = ((LimitRequestHeaders, 431), (ForbiddenProxyRequest, 403), (ExpectationFailed, 417))
INTERNAL = "internal server error; the request id is in the server log"


class DeadlineSocket:
    """A client socket whose reads share one deadline; everything else is the socket's."""

    def __init__(self, sock, seconds: float):
        self._sock, self._seconds = sock, seconds
        self.restart()

    def restart(self) -> None:
        """A new request on this connection gets the whole deadline again."""
        self._until = time.monotonic() + self._seconds

    def recv(self, size: int) -> bytes:
        if self._sock.gettimeout() is not None:  # a caller's own timeout: gunicorn's lingering close
            return self._sock.recv(size)
        left = self._until - time.monotonic()
        if left <= 0:
            raise RequestTimeout(f"the request did not arrive within {self._seconds:g} s")
        self._sock.settimeout(left)
        try:
            return self._sock.recv(size)
        except TimeoutError:
            raise RequestTimeout(f"the request did not arrive within {self._seconds:g} s") from None
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def refusal(exc: BaseException) -> tuple[int, str]:
    """(status, reason) for an exception raised while gunicorn read a request."""
    if isinstance(exc, RequestTimeout):
        return 408, str(exc)
    if isinstance(exc, ParseException):
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        return status, f"malformed HTTP request: {exc}"
    return 500, INTERNAL


def json_error(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 response carrying ``{"error": reason}``; the connection closes."""
    body = json.dumps({"error": reason}).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class JsonRefusals:
    """Replaces ``gunicorn.workers.base.Worker.handle_error`` (same signature)."""

    # set per worker by gunicorn_conf.post_fork from ServeSettings.read_deadline
    read_deadline_s: float = ServeSettings.read_deadline

    def handle_error(self, req, client, addr, exc):
        status, reason = refusal(exc)
        req = req or getattr(exc, "req", None)  # InvalidHeader carries the half-parsed request
        where = f"{req.method} {req.path}" if getattr(req, "method", None) else "(unparsed)"
        if status >= 500:
            log.error("request %s failed in gunicorn", where, exc_info=exc)
        else:
            # one line, like the app's request log; the reason is the client's to fix
            log.warning("request refused %s status=%d reason=%s", where, status, reason)
        try:
            util.write_nonblock(client, json_error(status, reason))
        except Exception:  # the client may be gone already; nothing left to tell it
            log.debug("could not send the %d to the client", status)


class JsonSyncWorker(JsonRefusals, SyncWorker):
    """gunicorn's ``sync`` worker (``MODEL_SERVER_THREADS=1``, the default): one request
    per connection, so the deadline starts when the worker takes the connection."""

    def handle(self, listener, client, addr):
        super().handle(listener, DeadlineSocket(client, self.read_deadline_s), addr)


class JsonThreadWorker(JsonRefusals, ThreadWorker):
    """gunicorn's ``gthread`` worker (``MODEL_SERVER_THREADS>1``): a keep-alive connection
    carries several requests, so each one restarts the deadline."""

    def handle(self, conn):
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.restart()
        else:  # before conn.init() makes the parser, which reads through conn.sock
            conn.sock = DeadlineSocket(conn.sock, self.read_deadline_s)
        return super().handle(conn)
