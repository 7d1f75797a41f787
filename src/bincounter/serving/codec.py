"""Request bodies -> instances, predictions -> response bodies.

Request types: raw image bytes (``image/jpeg``, ``image/png``,
``application/x-image``), ``application/json`` with ``{"image": b64}`` or
``{"instances": [...]}``, and ``application/jsonlines`` (Batch Transform).
Response types: ``application/json`` and ``application/jsonlines``.

JSON bodies are bounded before and after parsing: nesting depth (checked on
the raw bytes, so a ``[[[[…`` body never reaches the recursion limit), the
number of instances per request, and the type of every field we read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import reprlib

from bincounter.serving.contract import (CUSTOM_ATTRIBUTES, EXPECTED_QUANTITY, JSON, JSONLINES,
                                         MAX_INSTANCES, MAX_JSON_DEPTH, MAX_QUANTITY, RAW_IMAGE_TYPES,
                                         REQUEST_TYPES, RESPONSE_TYPES)
from bincounter.serving.errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedContentType
from bincounter.serving.handler import Instance

_ATTRIBUTE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([^;,]*)")
_DIGITS = re.compile(r"[0-9]{1,9}")
_ESCAPE = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_A_MARK = bytes(range(256)).translate(None, b'"[]{}')
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_depth_exceeds(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``text`` opens more than ``limit`` arrays/objects inside each other.

    Exact for valid JSON; for broken JSON it may say True where the parser would
    stop earlier (a 400 either way). Escapes, then strings, are cut out so that
    brackets inside strings do not count.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    marks = _ESCAPE.sub(b"", text).translate(None, _NOT_A_MARK)
    # what is left after the last unterminated quote is string content to the parser
    brackets = _STRING.sub(b"", marks).partition(b'"')[0].translate(_SQUARE)
    depth = 0
    for byte in brackets:
        depth += 1 if byte == 0x5B else -1
        if depth > limit:
            return True
    return False


def _short(value) -> str:
    """A client's value in a reason, cut short: a misplaced image must not come back whole."""
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _quantity(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise BadRequest(f"{where}: expected_quantity must be a whole number 0..{MAX_QUANTITY}, "
                         f"got {_short(value)}")
    return value


def quantity_from_attributes(header: str | None) -> int | None:
    """``expected_quantity=3`` out of SageMaker's custom attributes (``k=v`` pairs, ; or , separated)."""
    for key, value in _ATTRIBUTE.findall(header or ""):
        if key == EXPECTED_QUANTITY:
            return _quantity(value.strip(), CUSTOM_ATTRIBUTES)
    return None


def _instance(obj, where: str, default_quantity: int | None) -> Instance:
    if not isinstance(obj, dict):
        raise BadRequest(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "image" not in obj:
        raise BadRequest(f"{where}: no \"image\" field (base64 of the image bytes)")
    if not isinstance(obj["image"], str):
        raise BadRequest(f"{where}: \"image\" must be a base64 string")
    try:
        image = base64.b64decode(obj["image"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{where}: \"image\" is not valid base64 ({exc})") from exc
    quantity = _quantity(obj.get("expected_quantity"), where)
    return Instance(image, default_quantity if quantity is None else quantity)


def _loads(text: bytes, where: str):
    if json_depth_exceeds(text):
        raise BadRequest(f"{where} nests arrays/objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{where} is not valid JSON: {exc}") from exc
    except ValueError as exc:  # Python refuses to convert an integer literal of over 4300 digits
        raise BadRequest(f"{where} is not valid JSON: a number has too many digits") from exc


def _count(n: int, max_instances: int, what: str) -> None:
    if n > max_instances:
        raise PayloadTooLarge(f"{n} {what}; at most {max_instances} per request (send several requests)")


def decode_request(content_type: str, body: bytes, default_quantity: int | None = None,
                   max_instances: int = MAX_INSTANCES) -> tuple[list[Instance], bool]:
    """(instances, single): ``single`` means the caller sent one image, not a batch."""
    if content_type in RAW_IMAGE_TYPES:
        return [Instance(body, default_quantity)], True
    if content_type == JSON:
        doc = _loads(body, "body")
        if isinstance(doc, dict) and "instances" in doc:
            items = doc["instances"]
            if not isinstance(items, list) or not items:
                raise BadRequest("\"instances\" must be a non-empty list of {\"image\": base64} objects")
            _count(len(items), max_instances, "instances")
            given = _quantity(doc.get("expected_quantity"), "body")
            default = default_quantity if given is None else given
            return [_instance(o, f"instance {i}", default) for i, o in enumerate(items)], False
        return [_instance(doc, "body", default_quantity)], True
    if content_type == JSONLINES:
        lines = [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
        if not lines:
            raise BadRequest("jsonlines body has no lines")
        _count(len(lines), max_instances, "lines")
        return [_instance(_loads(line, f"line {n}"), f"line {n}", default_quantity)
                for n, line in lines], False
    raise UnsupportedContentType(
        f"Content-Type {content_type or '(none)'!r} is not supported; use one of {', '.join(REQUEST_TYPES)}")


def response_type(accept, content_type: str) -> str:
    """Pick the response type from a werkzeug ``MIMEAccept``; jsonlines answers jsonlines by default."""
    default = JSONLINES if content_type == JSONLINES else JSON
    if not accept:
        return default
    offers = [default] + [t for t in RESPONSE_TYPES if t != default]
    best = accept.best_match(offers)
    if best is None:
        raise NotAcceptable(f"cannot produce {accept.to_header()!r}; responses are {', '.join(RESPONSE_TYPES)}")
    return best


def encode_response(predictions: list[dict], single: bool, mimetype: str) -> str:
    if mimetype == JSONLINES:
        return "".join(json.dumps(p) + "\n" for p in predictions)
    return json.dumps(predictions[0] if single else {"predictions": predictions})
