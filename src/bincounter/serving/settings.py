"""Every knob of the server, read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from bincounter.serving.contract import MAX_BATCH_PAYLOAD_MB, MAX_BODY_BYTES, MB

if TYPE_CHECKING:  # the real import pulls numpy + Pillow; `serve` starts without them
    from bincounter.verification import VerdictRule

DEFAULT_MODEL_DIR = "/opt/ml/model"
# Batch Transform waits 600 s per invocation by default (ModelClientConfig.InvocationsTimeoutInSeconds,
# docs/platform.md §8).
BATCH_TIMEOUT_S = 600
# A transform keeps every worker busy for seconds per mini-batch while /ping must still answer
# within 2 s: in batch mode each worker gets a second thread (gthread), and the execution
# parameters ask for one concurrent transform per worker, so that thread stays free for pings.
BATCH_THREADS = 2


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot run with."""


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise SettingsError(f"{name}={env[name]!r} is not true or false")


def _prob(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name}={value} must be within 0..1")
    return value


@dataclass(frozen=True)
class ServeSettings:
    """Defaults measured on 2 vCPUs (docs/serving.md, ``make bench-serve``):
    one single-threaded (sync) worker per core with one ONNX Runtime thread
    each. The kernel then hands each connection to an idle worker; threaded
    workers queued requests behind a busy model and doubled p99."""
    model_dir: Path = Path(DEFAULT_MODEL_DIR)
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = field(default_factory=_cpus)
    threads: int = 1
    intra_op_threads: int = 1
    # SageMaker allows 60 s per invocation; gunicorn kills a worker silent for longer.
    timeout: int = 60
    # SageMaker sends SIGKILL 30 s after SIGTERM: drain in-flight requests before that.
    graceful_timeout: int = 25
    # Seconds a client may take to send one whole request (a slow or stalled one gets a 408).
    read_deadline: int = 10
    match_at: float | None = None
    mismatch_at: float | None = None
    # Batch Transform (SAGEMAKER_BATCH=true): a bad record becomes an error record in a
    # 200 instead of failing the whole mini-batch; the body limit is the job's MaxPayloadInMB.
    batch: bool = False
    max_payload_mb: int | None = None
    # SAGEMAKER_BATCH_STRATEGY and SAGEMAKER_MAX_CONCURRENT_TRANSFORMS change nothing here:
    # a body says how many records it holds, and each worker takes one request at a time

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted: 6 MiB in real time, the job's MaxPayloadInMB in batch
        (0 means SageMaker streams the body chunked; it is still held to the 100 MB maximum)."""
        if not self.batch or self.max_payload_mb is None:
            return MAX_BODY_BYTES
        return (self.max_payload_mb or MAX_BATCH_PAYLOAD_MB) * MB

    def execution_parameters(self) -> dict:
        """``GET /execution-parameters``: one concurrent transform per worker (each runs one
        model at a time), mini-batches of many records, and the largest payload that keeps
        MaxConcurrentTransforms x MaxPayloadInMB within SageMaker's 100."""
        concurrent = min(self.workers, MAX_BATCH_PAYLOAD_MB)
        return {"MaxConcurrentTransforms": concurrent, "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": min(MAX_BODY_BYTES // MB, MAX_BATCH_PAYLOAD_MB // concurrent)}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServeSettings":
        env = os.environ if env is None else env
        d = cls()
        batch = _flag(env, "SAGEMAKER_BATCH")
        payload = _int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", -1, 0)
        if payload > MAX_BATCH_PAYLOAD_MB:
            raise SettingsError(f"SAGEMAKER_MAX_PAYLOAD_IN_MB={payload} is over SageMaker's "
                                f"maximum of {MAX_BATCH_PAYLOAD_MB}")
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR),
            host=env.get("MODEL_SERVER_HOST") or d.host,
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", d.port),
            workers=_int(env, "MODEL_SERVER_WORKERS", d.workers),
            threads=_int(env, "MODEL_SERVER_THREADS", BATCH_THREADS if batch else d.threads),
            intra_op_threads=_int(env, "MODEL_SERVER_INTRA_OP_THREADS", d.intra_op_threads),
            timeout=_int(env, "MODEL_SERVER_TIMEOUT", BATCH_TIMEOUT_S if batch else d.timeout),
            graceful_timeout=_int(env, "MODEL_SERVER_GRACEFUL_TIMEOUT", d.graceful_timeout, 0),
            read_deadline=_int(env, "MODEL_SERVER_READ_DEADLINE", d.read_deadline),
            match_at=_prob(env, "BINCOUNTER_VERIFY_MATCH_AT"),
            mismatch_at=_prob(env, "BINCOUNTER_VERIFY_MISMATCH_AT"),
            batch=batch,
            max_payload_mb=None if payload < 0 else payload,
        )

    def thresholds(self, from_card: "VerdictRule") -> "VerdictRule":
        """model.json's thresholds with any BINCOUNTER_VERIFY_* overrides applied: an override
        sets that side for every expected count."""
        try:
            return from_card.replace_sides(self.match_at, self.mismatch_at)
        except ValueError as exc:
            raise SettingsError(f"BINCOUNTER_VERIFY_* with model.json's thresholds: {exc}") from None
