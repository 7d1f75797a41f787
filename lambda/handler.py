"""bincounter's Lambda front door: an event in, SageMaker InvokeEndpoint, an HTTP-shaped reply out.

Handler ``handler.lambda_handler`` (python3.11 runtime; boto3 comes with the
runtime, so the zip holds only this file and ``lambda_events.py``).

Configuration (environment):
  ENDPOINT_NAME           the SageMaker endpoint (required)
  CORS_ALLOW_ORIGIN       sets Access-Control-Allow-Origin (unset: no CORS headers)
  CORS_ALLOW_HEADERS      default "Content-Type,Authorization"
  S3_ALLOWED_PREFIX       e.g. s3://bucket/incoming/ ; unset: s3_uri input is refused
  CONNECT_TIMEOUT_S       default 2
  READ_TIMEOUT_S          default 6 (a prediction takes well under 1 s)
  MAX_ATTEMPTS            default 3 tries in all (botocore standard retry mode: throttling,
                          5xx and timeouts are retried with backoff)
  LOG_LEVEL               default INFO
Locally the same code reaches emulators through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME
and AWS_ENDPOINT_URL_S3; there is no local branch here.

Replies (API Gateway / Function URL shape; direct invocations get the same):
  200 the model server's JSON | 400 bad input (no image, bad base64, > 6 MB,
  bad expected_quantity, a malformed event of any shape) | 403 s3_uri outside S3_ALLOWED_PREFIX | 404 S3 object
  missing | 405 not POST | 415 unsupported Content-Type | 4xx the model
  server's own 4xx, passed through | 429 throttled | 502 endpoint or model
  server failure | 504 endpoint timeout | 500 function misconfigured.
Every failure body is ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                 EndpointConnectionError, ReadTimeoutError)

from lambda_events import MAX_IMAGE_BYTES, BadRequest, ImageRequest, S3Ref, parse_event, server_type

logger = logging.getLogger("bincounter.lambda")

THROTTLING_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException",
                    "ModelNotReadyException"}
_clients_lock = threading.Lock()
_clients: dict[tuple, object] = {}


class ConfigError(RuntimeError):
    """The function's environment is incomplete or wrong."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    cors_allow_origin: str | None = None
    cors_allow_headers: str = "Content-Type,Authorization"
    s3_allowed_prefix: str | None = None
    # worst case 3 x (2 + 6) s + backoff stays under API Gateway's 29 s and a 30 s function timeout
    connect_timeout: float = 2.0
    read_timeout: float = 6.0
    max_attempts: int = 3

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        name = env.get("ENDPOINT_NAME", "").strip()
        if not name:
            raise ConfigError("ENDPOINT_NAME is not set")
        try:
            return cls(endpoint_name=name,
                       cors_allow_origin=env.get("CORS_ALLOW_ORIGIN") or None,
                       cors_allow_headers=env.get("CORS_ALLOW_HEADERS") or cls.cors_allow_headers,
                       s3_allowed_prefix=env.get("S3_ALLOWED_PREFIX") or None,
                       connect_timeout=float(env.get("CONNECT_TIMEOUT_S", cls.connect_timeout)),
                       read_timeout=float(env.get("READ_TIMEOUT_S", cls.read_timeout)),
                       max_attempts=int(env.get("MAX_ATTEMPTS", cls.max_attempts)))
        except ValueError as exc:
            raise ConfigError(f"bad timeout / attempts setting: {exc}") from exc

    def client_config(self) -> Config:
        return Config(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                      # total_max_attempts counts the first try; botocore's max_attempts would not
                      retries={"mode": "standard", "total_max_attempts": self.max_attempts})


def cached_client(service: str, settings: Settings):
    """One client per (service, settings), kept across warm invocations to reuse connections."""
    key = (service, settings.connect_timeout, settings.read_timeout, settings.max_attempts)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = boto3.client(service, config=settings.client_config())
        return _clients[key]


class Reply(Exception):
    """A finished non-200 answer, raised from deep inside ``handle``."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _headers(settings: Settings | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if settings and settings.cors_allow_origin:
        headers.update({"Access-Control-Allow-Origin": settings.cors_allow_origin,
                        "Access-Control-Allow-Methods": "POST,OPTIONS",
                        "Access-Control-Allow-Headers": settings.cors_allow_headers})
    return headers


def respond(status: int, body: str, settings: Settings | None) -> dict:
    return {"statusCode": status, "headers": _headers(settings), "body": body,
            "isBase64Encoded": False}


def error(status: int, message: str, settings: Settings | None) -> dict:
    return respond(status, json.dumps({"error": message}), settings)


def fetch_s3(s3_client, ref: S3Ref, settings: Settings, content_type: str | None) -> tuple[bytes, str]:
    prefix = settings.s3_allowed_prefix
    if not prefix or s3_client is None:
        raise BadRequest("s3_uri input is not enabled on this function (S3_ALLOWED_PREFIX unset)")
    if not ref.uri.startswith(prefix):
        raise BadRequest(f"s3_uri must be under {prefix}", status=403)
    try:
        obj = s3_client.get_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise BadRequest(f"no such S3 object: {ref.uri}", status=404) from None
        if code in ("AccessDenied", "403"):
            # without s3:ListBucket (not granted, on purpose) S3 reports a missing key this way
            raise BadRequest(f"no such S3 object, or not readable by this function: {ref.uri}",
                             status=404) from None
        raise Reply(502, f"cannot read {ref.uri}: {code or exc}", code) from None
    if obj.get("ContentLength", 0) > MAX_IMAGE_BYTES:
        obj["Body"].close()
        raise BadRequest(f"{ref.uri} is {obj['ContentLength']} bytes; the limit is {MAX_IMAGE_BYTES} (6 MB)")
    data = obj["Body"].read()
    if not data:
        raise BadRequest(f"no image: {ref.uri} is empty")
    stored = (obj.get("ContentType") or "").split(";")[0].strip().lower()
    return data, server_type(content_type or stored, data)


def _model_error(exc: ClientError) -> Reply:
    err = exc.response.get("Error", {})
    status = exc.response.get("OriginalStatusCode")
    original = exc.response.get("OriginalMessage") or err.get("Message", "")
    try:
        message = json.loads(original).get("error", original)
    except (ValueError, AttributeError):
        message = original
    if isinstance(status, int) and 400 <= status < 500:
        # the model server judged the input bad: the caller should see that verdict
        return Reply(status, str(message), "ModelError")
    return Reply(502, f"model server error ({status}): {message}", "ModelError")


def invoke(runtime_client, settings: Settings, image: bytes, content_type: str,
           quantity: int | None) -> str:
    args = {"EndpointName": settings.endpoint_name, "Body": image,
            "ContentType": content_type, "Accept": "application/json"}
    if quantity is not None:
        args["CustomAttributes"] = f"expected_quantity={quantity}"
    try:
        reply = runtime_client.invoke_endpoint(**args)
        body = reply["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ModelError":
            raise _model_error(exc) from None
        if code in THROTTLING_CODES or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 429:
            raise Reply(429, "the endpoint is throttling requests; retry later", code) from None
        raise Reply(502, f"endpoint call failed: {code}: {exc.response.get('Error', {}).get('Message', '')}",
                    code) from None
    except ReadTimeoutError:
        raise Reply(504, f"the endpoint did not answer within {settings.read_timeout:g} s",
                    "ReadTimeout") from None
    except (ConnectTimeoutError, EndpointConnectionError) as exc:
        raise Reply(502, f"cannot reach the endpoint: {exc}", type(exc).__name__) from None
    except BotoCoreError as exc:
        raise Reply(502, f"endpoint call failed: {exc}", type(exc).__name__) from None
    try:
        text = body.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise Reply(502, "the endpoint answered with something other than JSON", "BadReply") from None
    return text


def handle(event, runtime_client, s3_client, settings: Settings, request_id: str = "-") -> dict:
    """The whole adapter: parse, fetch, invoke, map errors; logs one JSON line."""
    started = time.perf_counter()
    log = {"request_id": request_id, "endpoint": settings.endpoint_name, "kind": None,
           "content_type": None, "image_bytes": None, "expected_quantity": None}
    request: ImageRequest | None = None
    try:
        request = parse_event(event)
        log.update(kind=request.kind, expected_quantity=request.expected_quantity)
        if request.method == "OPTIONS":
            result = {"statusCode": 204, "headers": _headers(settings), "body": "", "isBase64Encoded": False}
        else:
            image, content_type = request.image, request.content_type
            if request.s3 is not None:
                log["s3_uri"] = request.s3.uri
                image, content_type = fetch_s3(s3_client, request.s3, settings, content_type)
            log.update(content_type=content_type, image_bytes=len(image))
            result = respond(200, invoke(runtime_client, settings, image, content_type,
                                         request.expected_quantity), settings)
    except BadRequest as exc:
        log["error"] = str(exc)
        result = error(exc.status, str(exc), settings)
    except Reply as exc:
        log.update(error=exc.message, error_code=exc.code)
        result = error(exc.status, exc.message, settings)
    log.update(status=result["statusCode"], ms=round((time.perf_counter() - started) * 1000, 1))
    logger.info(json.dumps(log, default=str))
    return result


def lambda_handler(event, context):
    request_id = getattr(context, "aws_request_id", "-")
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        logger.error(json.dumps({"request_id": request_id, "status": 500, "error": str(exc)}))
        return error(500, f"function misconfigured: {exc}", None)
    try:
        runtime = cached_client("sagemaker-runtime", settings)
        s3 = cached_client("s3", settings) if settings.s3_allowed_prefix else None
        return handle(event, runtime, s3, settings, request_id)
    except Exception:  # never crash the invocation: the caller gets JSON, the log gets the trace
        logger.exception(json.dumps({"request_id": request_id, "status": 500}))
        return error(500, "internal error in the front door", settings)
