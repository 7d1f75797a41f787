"""The one exception -> HTTP status table of the serving contract.

Every error leaves the server as ``{"error": "<reason>"}`` with the status
below; anything not in the table is our bug: 500, logged with its traceback,
and the worker keeps serving.
"""

from __future__ import annotations

from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException

from bincounter.modelcard import ModelCardError
from bincounter.preprocess import ImageDecodeError, ImageTooLargeError
from bincounter.serving.contract import MAX_BODY_BYTES


class BadRequest(ValueError):
    """The request is malformed: bad JSON, bad base64, a missing field, a bad value."""


class PayloadTooLarge(ValueError):
    """More instances than one request may carry."""


class RequestTimeout(Exception):
    """The client did not send the whole request within the read deadline (``workers``)."""


class UnsupportedContentType(ValueError):
    """The Content-Type is not one of the accepted request types."""


class NotAcceptable(ValueError):
    """The Accept header names no response type this server can produce."""


class ModelNotReady(RuntimeError):
    """The model is still loading (or failed to load) in this worker."""


# Order matters: the first matching class wins (ImageTooLargeError is a ValueError too).
STATUS_TABLE: tuple[tuple[type[BaseException], int], ...] = (
    (ImageTooLargeError, 413),
    (ImageDecodeError, 400),
    (BadRequest, 400),
    (PayloadTooLarge, 413),
    (RequestTimeout, 408),
    # gunicorn's parser raises these from wsgi.input too, while the app reads a chunked
    # body (a forbidden trailer such as Content-Length); werkzeug passes them on as they are
    (ParseException, 400),
    (UnsupportedContentType, 415),
    (NotAcceptable, 406),
    (ModelNotReady, 503),
    (ModelCardError, 503),
)


def status_for(exc: BaseException) -> int:
    """HTTP status for ``exc``: the table, werkzeug's own code, else 500."""
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    if isinstance(exc, HTTPException) and exc.code:
        return exc.code
    return 500


def error_message(exc: BaseException, status: int, max_body_bytes: int = MAX_BODY_BYTES) -> str:
    """The client-facing reason; a 500 never leaks internals."""
    if status >= 500 and status != 503:
        return "internal server error; the request id is in the server log"
    if status == 413 and isinstance(exc, HTTPException):
        return f"request body is larger than {max_body_bytes} bytes"
    if isinstance(exc, HTTPException):
        return exc.description or exc.name
    if isinstance(exc, ParseException):
        return f"malformed HTTP request: {exc}"
    return str(exc) or type(exc).__name__
