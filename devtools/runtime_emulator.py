"""Local SageMaker Runtime: ``POST /endpoints/{name}/invocations`` forwarded to a model server.

Dev tooling, not product. boto3's ``sagemaker-runtime`` client reaches it with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:PORT`` (signatures are
not checked). Replies follow botocore's sagemaker-runtime model (REST-JSON,
error code in the ``X-Amzn-ErrorType`` header):

- success: the model server's body and Content-Type, ``x-Amzn-Invoked-Production-Variant``;
- unknown endpoint: 400 ``ValidationError``;
- model server answered non-2xx, or not at all: 424 ``ModelError`` with
  ``OriginalStatusCode`` / ``OriginalMessage``;
- throttled (``--throttle NAME`` or ``RuntimeEmulator.throttle``): 429 ``ThrottlingException``;
- a share of calls failed on purpose (``RuntimeEmulator.inject``, the fault matrix): one of
  ``FAULTS``, SageMaker Runtime's own error shapes, or a hang past the caller's read timeout.

With ``--capture-dir DIR`` it writes endpoint data capture as SageMaker does
(``bincounter.monitoring.capture``: one JSON line per answered request under
``DIR/ENDPOINT/VARIANT/yyyy/mm/dd/hh/``; the answer always, the photo with
``--capture-input``; ``--capture-percentage`` of requests), so ``orchestrate
monitor`` reads a local endpoint's traffic as it reads a real one's.

    python -m devtools.runtime_emulator --port 0 --endpoint bincounter=http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bincounter.monitoring import capture
from bincounter.serving.contract import CUSTOM_ATTRIBUTES, MAX_BODY_BYTES
from devtools.local_http import LocalServer, ReplyHandler

log = logging.getLogger(__name__)

ACCOUNT = "000000000000"
PASSED_HEADERS = ("Content-Type", "Accept", CUSTOM_ATTRIBUTES)
_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


# (status, X-Amzn-ErrorType, body) of each injectable fault, as SageMaker Runtime answers them
FAULTS = {
    "throttling": (429, "ThrottlingException", {"message": "Rate exceeded"}),
    "not-ready": (429, "ModelNotReadyException", {"Message": "Model is not ready to serve inference requests"}),
    "unavailable": (503, "ServiceUnavailable", {"Message": "Service is unavailable"}),
    "model-error": (424, "ModelError", {"ErrorCode": "SERVER_ERROR_FROM_MODEL", "OriginalStatusCode": 500,
                                        "OriginalMessage": "injected", "Message": "Received server error (500) "
                                        "from primary with message \"injected\"."}),
    "hang": (0, "", {}),  # holds the call ``hang_s`` seconds, then answers as usual
}


class RuntimeEmulator(LocalServer):
    def __init__(self, endpoints: dict[str, str], host: str = "127.0.0.1", port: int = 0,
                 variant: str = "AllTraffic", region: str = "us-east-1", model_timeout: float = 60.0,
                 capture_dir: str | Path | None = None, capture_percentage: int = 100, capture_input: bool = False):
        self.endpoints = {name: url.rstrip("/") for name, url in endpoints.items()}
        self.variant, self.region, self.model_timeout = variant, region, model_timeout
        self.capture_dir = Path(capture_dir) if capture_dir else None
        self.capture_percentage, self.capture_input = capture_percentage, capture_input
        self._file = f"{uuid.uuid4()}.jsonl"  # one file per emulator per hour, as one instance writes
        self._throttled: dict[str, int] = {}
        self._faults: dict[str, tuple[str, float, random.Random]] = {}
        self.hang_s = 10.0
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def capture(self, endpoint: str, body: bytes, content_type: str, answer: bytes, answer_type: str) -> None:
        """One capture line for an answered request (sampled at ``capture_percentage``)."""
        if self.capture_dir is None or random.uniform(0, 100) >= self.capture_percentage:
            return
        now = datetime.now(timezone.utc)
        entry = capture.line(answer, answer_type, input_body=body if self.capture_input else None,
                             input_type=content_type, when=now)
        folder = self.capture_dir / capture.folder(endpoint, self.variant, now)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / self._file, "a", encoding="utf-8") as f:
                f.write(entry + "\n")

    def throttle(self, endpoint: str, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``endpoint`` with ThrottlingException (-1: always)."""
        with self._lock:
            self._throttled[endpoint] = times

    def inject(self, endpoint: str, fault: str, share: float, seed: int = 0) -> None:
        """Fail ``share`` of the calls to ``endpoint`` with ``fault`` (one of FAULTS), drawn by the seed."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        with self._lock:
            self._faults[endpoint] = (fault, share, random.Random(seed))

    def take_fault(self, endpoint: str) -> str | None:
        with self._lock:
            fault, share, rng = self._faults.get(endpoint, ("", 0.0, None))
            if rng is None or rng.random() >= share:
                return None
            self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault

    def take_throttle(self, endpoint: str) -> bool:
        with self._lock:
            left = self._throttled.get(endpoint, 0)
            if left > 0:
                self._throttled[endpoint] = left - 1
            return left != 0


class _Handler(ReplyHandler):
    server: RuntimeEmulator

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super()._send(status, body, {"x-amzn-RequestId": str(uuid.uuid4()), **headers})

    def _error(self, status: int, code: str, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode(),
                   {"Content-Type": "application/json", "X-Amzn-ErrorType": code})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _PATH.match(self.path.split("?")[0])
        if not match:
            return self._error(404, "UnknownOperationException", {"message": f"no operation at {self.path}"})
        name = urllib.request.unquote(match.group(1))
        srv = self.server
        if name not in srv.endpoints:
            return self._error(400, "ValidationError", {
                "message": f"Endpoint {name} of account {ACCOUNT} not found."})
        if srv.take_throttle(name):
            return self._error(429, "ThrottlingException", {"message": "Rate exceeded"})
        fault = srv.take_fault(name)
        if fault == "hang":
            time.sleep(srv.hang_s)
        elif fault is not None:
            return self._error(*FAULTS[fault])
        if len(body) > MAX_BODY_BYTES:
            return self._error(400, "ValidationError", {
                "message": f"Request body of {len(body)} bytes exceeds the limit of {MAX_BODY_BYTES}."})
        self._forward(name, body)

    def _forward(self, name: str, body: bytes) -> None:
        srv = self.server
        headers = {h: self.headers[h] for h in PASSED_HEADERS if self.headers.get(h) is not None}
        request = urllib.request.Request(srv.endpoints[name] + "/invocations", data=body,
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=srv.model_timeout) as reply:
                data = reply.read()
                out = {"Content-Type": reply.headers.get("Content-Type", "application/octet-stream"),
                       "x-Amzn-Invoked-Production-Variant": srv.variant}
                custom = reply.headers.get(CUSTOM_ATTRIBUTES)
                if custom:
                    out[CUSTOM_ATTRIBUTES] = custom
                srv.capture(name, body, headers.get("Content-Type", ""), data, out["Content-Type"])
                return self._send(200, data, out)
        except urllib.error.HTTPError as exc:
            status, message = exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            # what SageMaker reports when the container does not answer in time
            status, message = 0, f"Your invocation failed while waiting for a response from container primary: {exc}"
        kind = "client" if 400 <= status < 500 else "server"
        self._error(424, "ModelError", {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "Message": f'Received {kind} error ({status}) from primary with message "{message}". '
                       f"See /aws/sagemaker/Endpoints/{name} in account {ACCOUNT} for more information.",
            "OriginalMessage": message, "OriginalStatusCode": status,
            "LogStreamArn": f"arn:aws:logs:{srv.region}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{name}"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on start)")
    p.add_argument("--endpoint", action="append", required=True, metavar="NAME=URL",
                   help="an endpoint name and its model server's base URL (repeatable)")
    p.add_argument("--throttle", action="append", default=[], metavar="NAME",
                   help="answer every call to this endpoint with ThrottlingException")
    p.add_argument("--model-timeout", type=float, default=60.0)
    p.add_argument("--capture-dir", metavar="DIR", help="write data capture here, as SageMaker does")
    p.add_argument("--capture-percentage", type=int, default=100, metavar="1..100")
    p.add_argument("--capture-input", action="store_true", help="capture the photos too (BASE64)")
    a = p.parse_args(argv)
    if not 0 < a.capture_percentage <= 100:
        p.error("--capture-percentage wants 1..100")
    endpoints = {}
    for spec in a.endpoint:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url.startswith("http"):
            p.error(f"--endpoint wants NAME=http://host:port, got {spec!r}")
        endpoints[name] = url
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = RuntimeEmulator(endpoints, a.host, a.port, model_timeout=a.model_timeout, capture_dir=a.capture_dir,
                             capture_percentage=a.capture_percentage, capture_input=a.capture_input)
    for name in a.throttle:
        server.throttle(name, -1)
    return server.run_until_terminated("runtime emulator")


if __name__ == "__main__":
    sys.exit(main())
