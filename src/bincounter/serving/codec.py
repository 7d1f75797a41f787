"""Request bodies -> instances, predictions -> response bodies.

Request types: raw image bytes (``image/jpeg``, ``image/png``,
``application/x-image``), ``application/json`` with ``{"image": b64}`` or
``{"instances": [...]}``, and ``application/jsonlines`` (Batch Transform).
Response types: ``application/json`` and ``application/jsonlines``.

JSON bodies are bounded before and after parsing: nesting depth (checked on
the raw bytes, so a ``[[[[…`` body never reaches the recursion limit), the
number of instances per request, and the type of every field we read.

A JSON record may carry an ``id`` (echoed on its answer). In batch mode
(``isolate``) a record that cannot be read becomes a ``Rejected`` item, answered
with an error record, instead of failing the request.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import reprlib

from bincounter.serving.contract import (CUSTOM_ATTRIBUTES, EXPECTED_QUANTITY, JSON, JSONLINES,
                                         MAX_INSTANCES, MAX_JSON_DEPTH, MAX_QUANTITY, RAW_IMAGE_TYPES,
                                         REQUEST_TYPES, RESPONSE_TYPES)
from bincounter.serving.errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedContentType
from bincounter.serving.handler import Instance, Rejected

_ATTRIBUTE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([^;,]*)")
MAX_ID_CHARS = 1024
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


def _record_id(obj: dict, where: str) -> str | int | None:
    rid = obj.get("id")
    if rid is None:
        return None
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or len(str(rid)) > MAX_ID_CHARS:
        raise BadRequest(f"{where}: \"id\" must be a string (at most {MAX_ID_CHARS} characters) "
                         f"or an integer, got {type(rid).__name__}")
    return rid


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
    return Instance(image, default_quantity if quantity is None else quantity, _record_id(obj, where), where)


def _salvaged(exc: BadRequest, obj, default_quantity: int | None) -> Rejected:
    """The error, with the record's id and expected quantity where they can still be read."""
    rid = quantity = None
    if isinstance(obj, dict):
        with contextlib.suppress(BadRequest):
            rid = _record_id(obj, "")
        with contextlib.suppress(BadRequest):
            quantity = _quantity(obj.get("expected_quantity"), "")
    return Rejected(exc, rid, default_quantity if quantity is None else quantity)


def _reject(exc: BadRequest, isolate: bool, obj=None, default_quantity: int | None = None) -> Rejected:
    """The one place the two modes part: real time fails the request with ``exc``; batch
    mode (``isolate``) answers the record with an error record and goes on."""
    if not isolate:
        raise exc
    return _salvaged(exc, obj, default_quantity)


def _record(obj, where: str, default_quantity: int | None, isolate: bool) -> Instance | Rejected:
    try:
        return _instance(obj, where, default_quantity)
    except BadRequest as exc:
        return _reject(exc, isolate, obj, default_quantity)


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


def _decode_json(body: bytes, default_quantity: int | None, isolate: bool,
                 max_instances: int) -> tuple[list[Instance | Rejected], bool]:
    doc = _loads(body, "body")
    if isinstance(doc, dict) and "instances" in doc:
        items = doc["instances"]
        if not isinstance(items, list) or not items:
            raise BadRequest("\"instances\" must be a non-empty list of {\"image\": base64} objects")
        if not isolate:
            _count(len(items), max_instances, "instances")
        given = _quantity(doc.get("expected_quantity"), "body")
        default = default_quantity if given is None else given
        return [_record(o, f"instance {i}", default, isolate) for i, o in enumerate(items)], False
    return [_record(doc, "body", default_quantity, isolate)], True


def _decode_jsonlines(body: bytes, default_quantity: int | None, isolate: bool,
                      max_instances: int) -> tuple[list[Instance | Rejected], bool]:
    lines = [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
    if not lines and not isolate:  # in batch mode no records in means no answers out
        raise BadRequest("jsonlines body has no lines")
    if not isolate:
        _count(len(lines), max_instances, "lines")
    items: list[Instance | Rejected] = []
    for n, line in lines:
        try:
            obj = _loads(line, f"line {n}")
        except BadRequest as exc:
            items.append(_reject(exc, isolate, default_quantity=default_quantity))
            continue
        items.append(_record(obj, f"line {n}", default_quantity, isolate))
    return items, False


def decode_request(content_type: str, body: bytes, default_quantity: int | None = None,
                   max_instances: int = MAX_INSTANCES,
                   isolate: bool = False) -> tuple[list[Instance | Rejected], bool]:
    """(records, single): ``single`` means the caller sent one image, not a batch.

    ``isolate`` (batch mode): a record that cannot be read becomes a ``Rejected``
    item instead of failing the request; a JSON body that is not JSON at all is
    one rejected record. Without it every item is an ``Instance``. ``max_instances``
    bounds a real-time request; a batch payload is bounded by the job's MaxPayloadInMB
    instead (Batch Transform packs as many lines as fit, and the handler runs them
    MAX_RUN_BATCH at a time).
    """
    if content_type in RAW_IMAGE_TYPES:
        return [Instance(body, default_quantity)], True
    if content_type == JSON:
        try:
            return _decode_json(body, default_quantity, isolate, max_instances)
        except BadRequest as exc:
            return [_reject(exc, isolate, default_quantity=default_quantity)], True
    if content_type == JSONLINES:
        return _decode_jsonlines(body, default_quantity, isolate, max_instances)
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
