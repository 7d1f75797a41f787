"""The Lambda's one event contract: any supported event -> (image, content type, expected quantity).

Supported: API Gateway REST (payload 1.0) and HTTP API (payload 2.0) proxy
events, Lambda Function URL events, and direct invocations
``{"image_b64": "...", "expected_quantity": 3}`` or ``{"s3_uri": "s3://b/k.jpg"}``.
An HTTP body is either the image itself (``Content-Type: image/...``,
base64-encoded by the gateway) or a JSON document shaped like a direct
invocation. ``expected_quantity`` comes from the JSON document or the
``expected_quantity`` query-string parameter. Stdlib only (runs in the
python3.11 Lambda runtime).

Any event, of any shape, gets an ImageRequest or a BadRequest saying what is
wrong (a 4xx): fields of the wrong type, a body marked base64 that is not,
JSON nested deeper than the model server accepts, numbers too long to convert.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import reprlib
from dataclasses import dataclass
from urllib.parse import parse_qs

# Copies of the model server's contract (bincounter.serving.contract), since this
# module is stdlib-only; tests/lambda_/test_lambda_contract.py checks they are equal.
MAX_IMAGE_BYTES = 6_291_456
SERVER_IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
# what a caller may name: the server's types, or a generic one whose bytes are sniffed
IMAGE_TYPES = SERVER_IMAGE_TYPES + ("application/octet-stream",)
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
MAX_JSON_DEPTH = 32
MAX_QUANTITY = 999_999_999
# S3 object keys are at most 1024 bytes of UTF-8
_MAX_KEY_BYTES = 1024


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
    text = reprlib.repr(value)  # bounded depth: a deeply nested value cannot recurse
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value, what: str) -> str:
    """A field that must be a string (and encodable: JSON can carry lone surrogates)."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} is not valid Unicode (a lone surrogate)") from None
    return value


def _object(value, what: str) -> dict:
    """A field that must be a JSON object when present."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be an object, got {type(value).__name__}")
    return value


_ESCAPE = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_A_MARK = bytes(range(256)).translate(None, b'"[]{}')
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_depth_exceeds(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """bincounter.serving.codec.json_depth_exceeds, copied (stdlib only): True when ``text``
    opens more than ``limit`` arrays/objects inside each other, brackets in strings aside."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    marks = _ESCAPE.sub(b"", text).translate(None, _NOT_A_MARK)
    brackets = _STRING.sub(b"", marks).partition(b'"')[0].translate(_SQUARE)
    depth = 0
    for byte in brackets:
        depth += 1 if byte == 0x5B else -1
        if depth > limit:
            return True
    return False


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
        raise BadRequest(f"unsupported Content-Type {_short(content_type)}: send {', '.join(SERVER_IMAGE_TYPES)} "
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
    except ValueError:  # also digit strings too long to convert
        raise BadRequest(f"expected_quantity must be a whole number, got {_short(value)}") from None
    if not 0 <= quantity <= MAX_QUANTITY:
        raise BadRequest(f"expected_quantity must be a whole number 0..{MAX_QUANTITY}, got {_short(value)}")
    return quantity


def parse_s3_uri(uri) -> S3Ref:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise BadRequest(f"s3_uri must look like s3://bucket/key, got {_short(uri)}")
    bucket, _, key = _text(uri, "s3_uri")[len("s3://"):].partition("/")
    if not bucket or not key:
        raise BadRequest(f"s3_uri must look like s3://bucket/key, got {_short(uri)}")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise BadRequest(f"s3_uri's key is longer than S3's {_MAX_KEY_BYTES} bytes")
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


def _headers(event: dict) -> dict:
    # REST (1.0) keeps the client's header case; HTTP API and URLs lower-case them
    return {str(k).lower(): v for k, v in _object(event.get("headers"), "headers").items()}


def _query(event: dict) -> dict:
    params = _object(event.get("queryStringParameters"), "queryStringParameters")
    raw = event.get("rawQueryString")
    if not params and raw:
        params = {k: v[-1] for k, v in parse_qs(_text(raw, "rawQueryString")).items()}
    return params


def _base64_flag(event: dict) -> bool:
    flag = event.get("isBase64Encoded", False)
    if not isinstance(flag, bool):
        raise BadRequest(f"isBase64Encoded must be true or false, got {_short(flag)}")
    return flag


def _json_body(body: str, encoded: bool):
    data = _b64(body, "body (marked base64)") if encoded else body.encode("utf-8", "surrogatepass")
    if json_depth_exceeds(data):
        raise BadRequest(f"body nests arrays/objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except ValueError:  # Python refuses to convert an integer literal of over 4300 digits
        raise BadRequest("body is not valid JSON: a number has too many digits") from None


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
        return _text(event["httpMethod"], "httpMethod").upper()
    return _text(event["requestContext"]["http"].get("method", "POST"), "requestContext.http.method").upper()


def from_http(event: dict, kind: str) -> ImageRequest:
    method = http_method(event)
    quantity = _query(event).get("expected_quantity")
    if method == "OPTIONS":
        return ImageRequest(kind, None, None, None, method=method)
    if method != "POST":
        raise BadRequest(f"method {_short(method)} not allowed; POST an image", status=405)
    header = _headers(event).get("content-type", "")
    content_type = _text(header, "the Content-Type header").split(";")[0].strip().lower()
    body = event.get("body")
    encoded = _base64_flag(event)
    if body is None or body == "":
        raise BadRequest("no image: the request body is empty")
    body = _text(body, "body")
    if content_type == "application/json" or content_type.endswith("+json"):
        return from_document(_json_body(body, encoded), kind, quantity_fallback=quantity)
    if content_type:
        check_content_type(content_type)
    if not encoded:
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
