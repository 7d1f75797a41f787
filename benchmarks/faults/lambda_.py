"""The Lambda's rows: the endpoint (the runtime emulator in front of a real ``serve``) failing a
share of calls with each of SageMaker Runtime's error shapes; the caller must get JSON 429 / 502
/ 504, never a 500, and transient faults retried by botocore within the function's time."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import boto3

from benchmarks.faults import Row
from devtools.runtime_emulator import RuntimeEmulator

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
ENDPOINT = "bincounter"
# the function's timeout (lambda/README.md): every answer, retries included, must come before it
FUNCTION_BUDGET_S = 30.0
# what each fault may leave the caller with once botocore's retries are spent
ALLOWED = {"throttling": {200, 429}, "not-ready": {200, 429}, "unavailable": {200, 502},
           "model-error": {200, 502}, "hang": {200, 504}}


def _handler():
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
    import handler
    return handler


def endpoint_faults(server_url: str, image: bytes, calls: int = 30, share: float = 0.3,
                    faults: tuple[str, ...] = tuple(ALLOWED), hang_s: float = 3.0) -> list[Row]:
    """One row per fault: ``calls`` Lambda invocations while ``share`` of endpoint calls fail."""
    handler = _handler()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    # the function's defaults (3 attempts, 2 s connect, 6 s read) with a read timeout the hang
    # outlasts: the row then measures the 504 and the retries inside the budget
    settings = handler.Settings(ENDPOINT, read_timeout=min(handler.Settings.read_timeout, hang_s / 2))
    event = {"image_b64": base64.b64encode(image).decode(), "expected_quantity": 2}
    rows = []
    for fault in faults:
        emulator = RuntimeEmulator({ENDPOINT: server_url}).start()
        emulator.hang_s = hang_s
        emulator.inject(ENDPOINT, fault, share, seed=1)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=emulator.url, config=settings.client_config(),
                               region_name="us-east-1")
        statuses, slowest, bodies_ok = {}, 0.0, True
        try:
            for _ in range(calls):
                t0 = time.monotonic()
                reply = handler.handle(event, runtime, None, settings)
                slowest = max(slowest, time.monotonic() - t0)
                statuses[reply["statusCode"]] = statuses.get(reply["statusCode"], 0) + 1
                body = json.loads(reply["body"])
                bodies_ok &= reply["headers"].get("Content-Type") == "application/json" and (
                    reply["statusCode"] == 200 or bool(body.get("error")))
        finally:
            emulator.stop()
        injected = emulator.injected.get(fault, 0)
        row = Row("lambda", f"endpoint: {share:.0%} of calls {fault}",
                  f"runtime emulator answers {fault} (SageMaker Runtime's shape)",
                  f"JSON {'/'.join(map(str, sorted(ALLOWED[fault] - {200}))) or '200'}, never 500; "
                  f"within {FUNCTION_BUDGET_S:.0f} s")
        row.did = (f"{calls} calls, {injected} endpoint faults injected: statuses {dict(sorted(statuses.items()))}; "
                   f"slowest answer {slowest:.1f} s")
        row.recover_s = slowest
        row.passed = (set(statuses) <= ALLOWED[fault] and 500 not in statuses and bodies_ok
                      and slowest < FUNCTION_BUDGET_S)
        row.facts = {"statuses": statuses, "injected": injected, "slowest_s": slowest}
        rows.append(row)
    return rows
