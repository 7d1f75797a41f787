"""The Lambda's one event contract: any supported event -> (image, content type, expected quantity).

Supported: API Gateway REST (payload 1.0) and HTTP API (payload 2.0) proxy
events, Lambda Function URL events, and direct invocations
``{"image_b64": "...", "expected_quantity": 3}`` or ``{"s3_uri": "s3://b/k.jpg"}``.
An HTTP body is either the image itself (``Content-Type: image/...``,
base64-encoded by the gateway) or a JSON document shaped like a direct
invocation. ``expected_quantity`` comes from the JSON document or the
``expected_quantity`` query-string parameter. Stdlib only (runs in the
python3.11 Lambda runtime).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

# Copies of the model server's contract (bincounter.serving.contract), since this
# module is stdlib-only; tests/lambda_/test_lambda_contract.py checks they are equal.
MAX_IMAGE_BYTES = 6_291_456
SERVER_IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
# what a caller may name: the server's types, or a generic one whose bytes are sniffed
IMAGE_TYPES = SERVER_IMAGE_TYPES + ("application/octet-stream",)
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class BadRequest(ValueError):
    """The caller's input is unusable; the message is safe to return to the caller."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class S3Ref:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ImageRequest:
    """What the Lambda forwards to the endpoint. ``image`` is None when ``s3`` must be fetched."""
    kind: str  # apigw-rest | apigw-http | function-url | direct
    image: bytes | None
    content_type: str | None
    expected_quantity: int | None
    s3: S3Ref | None = None
    method: str = "POST"


def _short(value) -> str:
    """repr for error messages: a caller's misplaced image must not land in the reply or the log."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sniff_content_type(data: bytes) -> str:
    """The server type for these bytes: JPEG and PNG by name, any other image as
    ``application/x-image`` (the server decodes what it can, and says why not)."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return "application/x-image"


def server_type(named: str | None, data: bytes) -> str:
    """The Content-Type to send the server: the caller's when the server takes it, else sniffed."""
    return named if named in SERVER_IMAGE_TYPES else sniff_content_type(data)


def check_content_type(content_type: str) -> str:
    if content_type not in IMAGE_TYPES:
        raise BadRequest(f"unsupported Content-Type {content_type!r}: send {', '.join(SERVER_IMAGE_TYPES)} "
                         "(or application/octet-stream), or application/json", status=415)
    return content_type


def check_size(data: bytes) -> bytes:
    if not data:
        raise BadRequest("no image: the body is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise BadRequest(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} (6 MB)")
    return data


def parse_expected_quantity(value) -> int | None:
    if value is None or value == "":
        return None
    # bool is an int subclass: true/false are not quantities
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"expected_quantity must be a whole number, got {_short(value)}")
    try:
        quantity = int(value)
    except ValueError:
        raise BadRequest(f"expected_quantity must be a whole number, got {_short(value)}") from None
    if quantity < 0:
        raise BadRequest(f"expected_quantity must be >= 0, got {quantity}")
    return quantity


def parse_s3_uri(uri) -> S3Ref:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise BadRequest(f"s3_uri must look like s3://bucket/key, got {_short(uri)}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise BadRequest(f"s3_uri must look like s3://bucket/key, got {_short(uri)}")
    return S3Ref(bucket, key)


def _b64(text, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def from_document(doc, kind: str, quantity_fallback=None) -> ImageRequest:
    """A direct invocation payload, or the same document posted as a JSON body."""
    if not isinstance(doc, dict):
        raise BadRequest("expected a JSON object with image_b64 or s3_uri")
    quantity = parse_expected_quantity(doc.get("expected_quantity", quantity_fallback))
    content_type = doc.get("content_type")
    if content_type is not None and not isinstance(content_type, str):
        raise BadRequest("content_type must be a string")
    if content_type is not None:
        content_type = check_content_type(content_type.split(";")[0].strip().lower())
    if "image_b64" in doc and "s3_uri" in doc:
        raise BadRequest("give either image_b64 or s3_uri, not both")
    if "image_b64" in doc:
        image = check_size(_b64(doc["image_b64"], "image_b64"))
        return ImageRequest(kind, image, server_type(content_type, image), quantity)
    if "s3_uri" in doc:
        return ImageRequest(kind, None, content_type, quantity, s3=parse_s3_uri(doc["s3_uri"]))
    raise BadRequest("no image: give image_b64 (base64 image) or s3_uri")


def _headers(event: dict) -> dict[str, str]:
    # REST (1.0) keeps the client's header case; HTTP API and URLs lower-case them
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def _query(event: dict) -> dict[str, str]:
    params = dict(event.get("queryStringParameters") or {})
    if not params and event.get("rawQueryString"):
        params = {k: v[-1] for k, v in parse_qs(event["rawQueryString"]).items()}
    return params


def http_kind(event: dict) -> str | None:
    context = event.get("requestContext")
    if not isinstance(context, dict):
        return None
    if "httpMethod" in event:
        return "apigw-rest"
    if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
        if ".lambda-url." in str(context.get("domainName", "")):
            return "function-url"
        return "apigw-http"
    return None


def http_method(event: dict) -> str:
    if "httpMethod" in event:
        return str(event["httpMethod"]).upper()
    return str(event["requestContext"]["http"].get("method", "POST")).upper()


def from_http(event: dict, kind: str) -> ImageRequest:
    method = http_method(event)
    quantity = _query(event).get("expected_quantity")
    if method == "OPTIONS":
        return ImageRequest(kind, None, None, None, method=method)
    if method != "POST":
        raise BadRequest(f"method {method} not allowed; POST an image", status=405)
    content_type = _headers(event).get("content-type", "").split(";")[0].strip().lower()
    body = event.get("body")
    if body is None or body == "":
        raise BadRequest("no image: the request body is empty")
    if content_type == "application/json" or content_type.endswith("+json"):
        text = base64.b64decode(body).decode("utf-8", "replace") if event.get("isBase64Encoded") else body
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        return from_document(doc, kind, quantity_fallback=quantity)
    if content_type:
        check_content_type(content_type)
    if not event.get("isBase64Encoded"):
        # A gateway passes binary only as base64; text here means the image was mangled.
        raise BadRequest("image body arrived as text, not base64: enable binary media types "
                         "(image/*) on the API")
    image = check_size(_b64(body, "body"))
    # generic clients send no or a generic type; the model server wants the image's own
    return ImageRequest(kind, image, server_type(content_type, image), parse_expected_quantity(quantity))


def parse_event(event) -> ImageRequest:
    """Turn any supported event into an ImageRequest, or raise BadRequest saying why not."""
    if not isinstance(event, dict):
        raise BadRequest("event must be a JSON object")
    kind = http_kind(event)
    if kind:
        return from_http(event, kind)
    if {"image_b64", "s3_uri", "expected_quantity"} & event.keys():
        return from_document(event, "direct")
    raise BadRequest("unsupported event: expected an API Gateway / Function URL request, "
                     "or {\"image_b64\": ..., \"expected_quantity\": N} / {\"s3_uri\": ...}")
