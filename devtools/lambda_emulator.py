"""Local Lambda Invoke API: ``POST /2015-03-31/functions/{name}/invocations`` runs our handler.

Dev tooling, not product; the same path the AWS Lambda runtime interface
emulator answers. ``aws lambda invoke --endpoint-url http://127.0.0.1:PORT``
and boto3's lambda client (``AWS_ENDPOINT_URL_LAMBDA``) work against it. The
handler runs in this process with this process's environment, as its
configuration (ENDPOINT_NAME, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, ...).

- RequestResponse: 200 with the handler's JSON result; a raised exception
  becomes 200 + ``X-Amz-Function-Error: Unhandled`` like the real service;
- Event: 202, run in the background; DryRun: 204;
- unknown function: 404 ``ResourceNotFoundException``; payload not JSON: 400
  ``InvalidRequestContentException``.

    python -m devtools.lambda_emulator --port 0 --code-dir lambda --function bincounter=handler.lambda_handler
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

from devtools.local_http import LocalServer, ReplyHandler

log = logging.getLogger(__name__)

ACCOUNT = "000000000000"
_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


@dataclass
class LambdaContext:
    """The attributes of the runtime's context object that handlers use."""
    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    timeout_s: float = 30.0
    started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def load_handler(code_dir: str | Path, spec: str) -> Callable:
    """``module.function`` from ``code_dir``, the way the runtime imports a zip's handler."""
    module_name, _, func = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler must be module.function, got {spec!r}")
    code_dir = str(Path(code_dir).resolve())
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    return getattr(importlib.import_module(module_name), func)


def function_name_of(raw: str) -> str:
    """FunctionName may be a name, a partial or a full ARN, with or without a qualifier."""
    parts = unquote(raw).split(":")
    if "function" in parts:
        return parts[parts.index("function") + 1]
    return parts[0]


class LambdaEmulator(LocalServer):
    def __init__(self, functions: dict[str, Callable], host: str = "127.0.0.1", port: int = 0,
                 region: str = "us-east-1"):
        self.functions, self.region = functions, region
        super().__init__((host, port), _Handler)

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"


class _Handler(ReplyHandler):
    server: LambdaEmulator

    def _error(self, status: int, code: str, message: str, request_id: str) -> None:
        self._send(status, json.dumps({"Type": "User", "message": message}).encode(),
                   {"Content-Type": "application/json", "X-Amzn-ErrorType": code,
                    "x-amzn-RequestId": request_id})

    def do_POST(self) -> None:
        request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        match = _PATH.match(self.path.split("?")[0])
        if not match:
            return self._error(404, "UnknownOperationException", f"no operation at {self.path}", request_id)
        name = function_name_of(match.group(1))
        handler = self.server.functions.get(name)
        if handler is None:
            return self._error(404, "ResourceNotFoundException",
                               f"Function not found: {self.server.arn(name)}", request_id)
        try:
            event = json.loads(raw or b"{}")
        except ValueError as exc:
            return self._error(400, "InvalidRequestContentException",
                               f"Could not parse request body into json: {exc}", request_id)
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        context = LambdaContext(name, request_id, self.server.arn(name))
        if invocation_type == "DryRun":
            return self._send(204, b"", {"x-amzn-RequestId": request_id})
        if invocation_type == "Event":
            threading.Thread(target=self._run, args=(handler, event, context), daemon=True).start()
            return self._send(202, b"", {"x-amzn-RequestId": request_id})
        payload, failed = self._run(handler, event, context)
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id,
                   "X-Amz-Executed-Version": "$LATEST"}
        if failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
        self._send(200, payload, headers)

    @staticmethod
    def _run(handler: Callable, event, context: LambdaContext) -> tuple[bytes, bool]:
        try:
            return json.dumps(handler(event, context)).encode(), False
        except Exception as exc:  # the real service reports a handler crash inside a 200
            log.exception("handler %s failed (request %s)", context.function_name, context.aws_request_id)
            return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                               "requestId": context.aws_request_id,
                               "stackTrace": traceback.format_exc().splitlines()}).encode(), True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on start)")
    p.add_argument("--code-dir", default=str(Path(__file__).resolve().parents[1] / "lambda"))
    p.add_argument("--function", action="append", required=True, metavar="NAME=MODULE.FUNC",
                   help="a function name and its handler in --code-dir (repeatable)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    functions = {}
    for spec in a.function:
        name, sep, handler = spec.partition("=")
        if not sep or not name:
            p.error(f"--function wants NAME=module.function, got {spec!r}")
        functions[name] = load_handler(a.code_dir, handler)
    server = LambdaEmulator(functions, a.host, a.port)
    return server.run_until_terminated("lambda emulator")


if __name__ == "__main__":
    sys.exit(main())
