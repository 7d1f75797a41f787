"""Every knob of the server, read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # the real import pulls numpy + Pillow; `serve` starts without them
    from bincounter.verification import Thresholds

DEFAULT_MODEL_DIR = "/opt/ml/model"


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
    """Defaults measured on 2 vCPUs (README "Serving", ``make bench-serve``):
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServeSettings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR),
            host=env.get("MODEL_SERVER_HOST") or d.host,
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", d.port),
            workers=_int(env, "MODEL_SERVER_WORKERS", d.workers),
            threads=_int(env, "MODEL_SERVER_THREADS", d.threads),
            intra_op_threads=_int(env, "MODEL_SERVER_INTRA_OP_THREADS", d.intra_op_threads),
            timeout=_int(env, "MODEL_SERVER_TIMEOUT", d.timeout),
            graceful_timeout=_int(env, "MODEL_SERVER_GRACEFUL_TIMEOUT", d.graceful_timeout, 0),
            read_deadline=_int(env, "MODEL_SERVER_READ_DEADLINE", d.read_deadline),
            match_at=_prob(env, "BINCOUNTER_VERIFY_MATCH_AT"),
            mismatch_at=_prob(env, "BINCOUNTER_VERIFY_MISMATCH_AT"),
        )

    def thresholds(self, from_card: "Thresholds") -> "Thresholds":
        """model.json's thresholds with any BINCOUNTER_VERIFY_* overrides applied."""
        overrides = {k: v for k, v in (("match_at", self.match_at),
                                       ("mismatch_at", self.mismatch_at)) if v is not None}
        try:
            return replace(from_card, **overrides)
        except ValueError as exc:
            raise SettingsError(f"BINCOUNTER_VERIFY_* with model.json's thresholds: {exc}") from None
