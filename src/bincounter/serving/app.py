"""The HTTP layer of the SageMaker serving contract: routes, readiness, errors, request log.

Thin on purpose: parsing lives in ``codec``, the model in ``handler``, the
status table in ``errors``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from importlib import resources
from typing import Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from bincounter.modelcard import ModelCard, ModelCardError
from bincounter.serving import codec
from bincounter.serving.contract import CUSTOM_ATTRIBUTES, MAX_BODY_BYTES, REQUEST_TYPES
from bincounter.serving.errors import ModelNotReady, UnsupportedContentType, error_message, status_for
from bincounter.serving.handler import ModelHandler
from bincounter.serving.settings import ServeSettings

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"[^A-Za-z0-9._:-]")
# Well inside SageMaker's 60 s per invocation.
INVOCATION_LOAD_WAIT_S = 30.0
# Well inside the platform's 2 s ping timeout; spares a 503 when the load is about to finish.
PING_LOAD_WAIT_S = 1.0
# An oversized body up to this size is read and dropped before the 413, so the
# client, still sending, receives the answer instead of a connection reset.
DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES


def _drain(stream, nbytes: int) -> None:
    while nbytes > 0:
        chunk = stream.read(min(nbytes, 1 << 16))
        if not chunk:
            return
        nbytes -= len(chunk)


class ModelState:
    """Readiness of this worker: loading -> ready, or loading -> failed."""

    def __init__(self) -> None:
        self.handler: ModelHandler | None = None
        self.error: str | None = None
        self._done = threading.Event()

    def start(self, load: Callable[[], ModelHandler],
              on_failure: Callable[[BaseException], None] | None = None) -> threading.Thread:
        """Load in a background thread so /ping answers 503 at once while a big model loads."""
        def run() -> None:
            try:
                self.handler = load()
            except BaseException as exc:  # any load failure must surface, never hang readiness
                self.error = f"model failed to load: {exc}"
                # a bad model directory is the operator's to fix: the reason, no traceback
                log.error("%s", self.error, exc_info=not isinstance(exc, ModelCardError))
                if on_failure is not None:
                    on_failure(exc)
            finally:
                self._done.set()

        thread = threading.Thread(target=run, name="model-loader", daemon=True)
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """True once loading has finished (loaded or failed)."""
        return self._done.wait(timeout)

    def get(self, wait: float = 0.0) -> ModelHandler:
        """The handler; waits up to ``wait`` seconds for a load still in progress."""
        if self.handler is None and wait > 0:
            self._done.wait(wait)
        if self.handler is None:
            raise ModelNotReady(self.error or "model is loading")
        return self.handler


def check_model_dir(settings: ServeSettings) -> list[str]:
    """Fail before any worker forks when model.json, the ONNX file or a threshold is wrong;
    returns what the operator should read once: an override of a card's measured thresholds."""
    card = ModelCard.read(settings.model_dir)
    thresholds = settings.thresholds(card.verification)
    if not (settings.model_dir / card.onnx_file).is_file():
        raise ModelCardError(f"{settings.model_dir / card.onnx_file} not found "
                             f"(SM_MODEL_DIR={settings.model_dir})")
    if thresholds == card.verification or not card.operating_point:
        return []
    targets = card.operating_point.get("targets", {})
    return [f"BINCOUNTER_VERIFY_* replaces model.json's thresholds ({card.verification.describe()}; chosen for "
            f"max-false-match {targets.get('max_false_match')} and max-false-mismatch "
            f"{targets.get('max_false_mismatch')}) with {thresholds.describe()}: the error rates "
            "model.json states no longer describe these verdicts"]


def load_handler(settings: ServeSettings) -> ModelHandler:
    card = ModelCard.read(settings.model_dir)
    return ModelHandler.load(settings.model_dir, settings.thresholds(card.verification),
                             settings.intra_op_threads)


def create_app(settings: ServeSettings,
               on_load_failure: Callable[[BaseException], None] | None = None) -> Flask:
    """The WSGI app; starts loading the model at once (call it in each worker, after fork)."""
    app = Flask(__name__)
    # 6 MiB in real time; in Batch Transform the job's MaxPayloadInMB
    max_body = app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    state = ModelState()
    app.extensions["bincounter.model"] = state
    openapi = resources.files(__package__).joinpath("openapi.json").read_bytes()

    @app.before_request
    def _start() -> None:
        g.t0 = time.perf_counter()
        given = request.headers.get("X-Request-Id") or request.headers.get(
            "X-Amzn-SageMaker-Inference-Id") or ""
        g.request_id = _SAFE_ID.sub("", given)[:128] or uuid.uuid4().hex
        length = request.content_length
        if length is not None and length > max_body:
            _drain(request.environ["wsgi.input"], min(length, DRAIN_LIMIT_BYTES))
            raise RequestEntityTooLarge()

    @app.after_request
    def _log(response: Response) -> Response:
        request_id = g.get("request_id", "-")
        response.headers["X-Request-Id"] = request_id
        latency_ms = (time.perf_counter() - g.get("t0", time.perf_counter())) * 1000
        log.info("request id=%s %s %s content_type=%s bytes=%s status=%d latency_ms=%.1f",
                 request_id, request.method, request.path, request.mimetype or "-",
                 request.content_length or 0, response.status_code, latency_ms)
        return response

    @app.errorhandler(Exception)
    def _error(exc: Exception):
        status = status_for(exc)
        if status >= 500 and status != 503:
            log.exception("request id=%s failed", g.get("request_id", "-"))
        return {"error": error_message(exc, status, max_body)}, status

    @app.get("/ping")
    def ping():
        state.get(wait=PING_LOAD_WAIT_S)
        return Response(b"", status=200)

    @app.post("/invocations")
    def invocations():
        # Another worker's 200 on /ping can route traffic here while this worker
        # is still loading: wait for the load rather than failing the request.
        handler = state.get(wait=INVOCATION_LOAD_WAIT_S)
        content_type = request.mimetype
        if content_type not in REQUEST_TYPES:
            raise UnsupportedContentType(
                f"Content-Type {content_type or '(none)'!r} is not supported; "
                f"use one of {', '.join(REQUEST_TYPES)}")
        accept = request.accept_mimetypes if request.headers.get("Accept") else None
        mimetype = codec.response_type(accept, content_type)
        quantity = codec.quantity_from_attributes(request.headers.get(CUSTOM_ATTRIBUTES))
        records, single = codec.decode_request(content_type, request.get_data(cache=False), quantity,
                                               isolate=settings.batch)
        # Batch Transform writes no output for an input whose answer is not 2xx and fails the
        # job; so in batch mode a bad record is answered with an error record, never a 4xx.
        predictions = handler.handle_records(records) if settings.batch else handler.handle(records)
        return Response(codec.encode_response(predictions, single, mimetype), mimetype=mimetype)

    @app.get("/execution-parameters")
    def execution_parameters():
        # asked by Batch Transform before the first invocation; a job's own values win
        return settings.execution_parameters()

    @app.get("/openapi.json")
    def openapi_document():
        return Response(openapi, mimetype="application/json")

    state.start(lambda: load_handler(settings), on_load_failure)
    return app
