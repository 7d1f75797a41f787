"""Request bodies -> instances, predictions -> response bodies.

Request types: raw image bytes (``image/jpeg``, ``image/png``,
``application/x-image``), ``application/json`` with ``{"image": b64}`` or
``{"instances": [...]}``, and ``application/jsonlines`` (Batch Transform).
Response types: ``application/json`` and ``application/jsonlines``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from bincounter.serving.contract import (CUSTOM_ATTRIBUTES, EXPECTED_QUANTITY, JSON, JSONLINES,
                                         RAW_IMAGE_TYPES, REQUEST_TYPES, RESPONSE_TYPES)
from bincounter.serving.errors import BadRequest, NotAcceptable, UnsupportedContentType
from bincounter.serving.handler import Instance

_ATTRIBUTE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([^;,]*)")


def _quantity(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{where}: expected_quantity must be a non-negative integer, got {value!r}")
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
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{where} is not valid JSON: {exc}") from exc


def decode_request(content_type: str, body: bytes,
                   default_quantity: int | None = None) -> tuple[list[Instance], bool]:
    """(instances, single): ``single`` means the caller sent one image, not a batch."""
    if content_type in RAW_IMAGE_TYPES:
        return [Instance(body, default_quantity)], True
    if content_type == JSON:
        doc = _loads(body, "body")
        if isinstance(doc, dict) and "instances" in doc:
            items = doc["instances"]
            if not isinstance(items, list) or not items:
                raise BadRequest("\"instances\" must be a non-empty list of {\"image\": base64} objects")
            given = _quantity(doc.get("expected_quantity"), "body")
            default = default_quantity if given is None else given
            return [_instance(o, f"instance {i}", default) for i, o in enumerate(items)], False
        return [_instance(doc, "body", default_quantity)], True
    if content_type == JSONLINES:
        lines = [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
        if not lines:
            raise BadRequest("jsonlines body has no lines")
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
