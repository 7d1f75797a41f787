"""orchestrate's configuration: one TOML file, overridden by env, overridden by flags.

Precedence (lowest first): the defaults below, ``orchestrate.toml``,
``ORCHESTRATE_<SECTION>_<KEY>`` environment variables, ``--set section.key=value``
flags. Values from env and flags are strings, typed by the default's type.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "ORCHESTRATE_"


class ConfigError(ValueError):
    """A configuration value that is missing, unknown or of the wrong type."""


@dataclass
class AwsSection:
    region: str = "us-east-1"
    role_arn: str = ""
    bucket: str = ""
    prefix: str = "bincounter"
    stack: str = "bincounter"


@dataclass
class ImagesSection:
    training_image: str = ""
    serving_image: str = ""
    training_repo: str = "bincounter-training"
    serving_repo: str = "bincounter-serving"
    tag: str = "latest"


@dataclass
class DataSection:
    source_bucket: str = "aft-vbi-pds"
    source_region: str = "us-east-1"
    source_endpoint_url: str = ""
    file_list: str = ""
    per_class: int = 0
    local_dir: str = "data/abid"
    seed: int = 0
    fractions: list = field(default_factory=lambda: [0.8, 0.1, 0.1])
    workers: int = 16


@dataclass
class TrainSection:
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_gb: int = 30
    spot: bool = True
    max_run_seconds: int = 3600
    max_wait_seconds: int = 7200
    debug_hook: bool = True
    debugger_rules: bool = False
    # only what the user set: every other hyperparameter takes the training
    # contract's default (bincounter.training.hyperparameters.PARAMS) in the job
    hyperparameters: dict = field(default_factory=dict)


@dataclass
class TuneSection:
    max_jobs: int = 4
    max_parallel_jobs: int = 2
    strategy: str = "Bayesian"


@dataclass
class DeploySection:
    endpoint_name: str = "bincounter"
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    autoscaling_max: int = 0
    autoscaling_target: float = 70.0
    wait_seconds: int = 1800


@dataclass
class MonitorSection:
    # endpoint data capture, on by default (deploy --no-capture turns it off)
    capture: bool = True
    sampling_percentage: int = 100
    # SageMaker's CaptureMode: the answers always; the photos too only when asked (each is tens
    # of KB, stored BASE64: sample them at a low percentage)
    capture_input: bool = False
    capture_prefix: str = "capture"   # under s3://BUCKET/PREFIX/
    alpha: float = 0.05               # the monitor's family-wise false-alarm rate per window
    min_answers: int = 30             # fewer answers in a window and no drift test runs
    window_hours: int = 24            # the scheduled report's window: the hours before each run
    instance_type: str = "ml.t3.medium"  # the scheduled report's Processing job
    # the alarms' period: the time between two scheduled runs, read from a rate() expression;
    # state it (hours) for a cron() one
    alarm_period_hours: int = 0


@dataclass
class CostsSection:
    # USD per instance-hour by instance type, SageMaker on-demand in aws.region (the default
    # is us-east-1's ml.m5.large, the same for an endpoint and for Batch Transform): the one
    # price `audit` and `report` use
    hourly_usd: dict = field(default_factory=lambda: {"ml.m5.large": 0.115})
    # images per second one instance serves, by instance type and model, measured by
    # `make bench-serve` (benchmarks/README.md); `measured` says where and when. The example
    # orchestrate.toml states the same values (a test holds them equal)
    img_per_s: dict = field(default_factory=lambda: {"ml.m5.large": {"fp32": 32.7, "int8": 99.7}})
    measured: str = ("by make bench-serve on 2026-11-30 on a 2-vCPU Xeon with AVX-512 VNNI standing in for "
                     "ml.m5.large (ResNet50 224 px, 4 clients)")

    def hourly(self, instance_type: str) -> float:
        """The configured price of ``instance_type``; asked before anything is billed."""
        try:
            return float(self.hourly_usd[instance_type])
        except KeyError:
            raise ConfigError(f"no price for {instance_type}: add it to [costs] hourly_usd (USD per "
                              "instance-hour, from the SageMaker pricing page for aws.region)") from None


@dataclass
class AuditSection:
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_concurrent_transforms: int = 0
    max_payload_mb: int = 0
    batch_strategy: str = ""
    content_type: str = "image/jpeg"
    invocations_timeout: int = 600
    wait_seconds: int = 6 * 3600
    recount_rows: int = 100


@dataclass
class ReviewSection:
    url: str = "http://127.0.0.1:8090"      # Label Studio (compose's review profile publishes 8090)
    token_env: str = "LABEL_STUDIO_API_KEY"  # the environment variable with its API token: never a file
    project: str = ""                       # the project's title; "" = "<aws.stack> recounts"
    # Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, as both sides see it: local photos
    # must be under it (review export --local); "" = local photos cannot be shown
    local_root: str = ""
    presign_ttl_minutes: int = 15           # how long a photo's presigned URL lives (S3 photos)
    labels_prefix: str = "labels"           # s3://BUCKET/PREFIX/labels/: review import's files
    golden_prefix: str = "golden"           # s3://BUCKET/PREFIX/golden/: the golden set
    timeout: int = 30                       # seconds per Label Studio request
    promote_alpha: float = 0.05             # promote: McNemar's p must be below it to replace a model
    # plain http:// to a Label Studio on another host sends the token in the clear: refused unless set
    insecure_http: bool = False
    # a blind count: tasks show the photo and the choices only, never the expected quantity or the
    # model's count (a counter who sees them tends to confirm them; docs/reviews.md)
    blind: bool = True


@dataclass
class LambdaSection:
    function_name: str = "bincounter-verify"
    source_dir: str = "lambda"
    handler: str = "handler.lambda_handler"
    runtime: str = "python3.11"
    policy_file: str = "lambda/iam-policy.json"
    timeout: int = 30
    memory_mb: int = 256
    zip_file: str = ""
    s3_input_prefix: str = ""
    function_url_auth: str = ""


@dataclass
class Config:
    aws: AwsSection = field(default_factory=AwsSection)
    images: ImagesSection = field(default_factory=ImagesSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    tune: TuneSection = field(default_factory=TuneSection)
    deploy: DeploySection = field(default_factory=DeploySection)
    audit: AuditSection = field(default_factory=AuditSection)
    function: LambdaSection = field(default_factory=LambdaSection)
    costs: CostsSection = field(default_factory=CostsSection)
    monitor: MonitorSection = field(default_factory=MonitorSection)
    review: ReviewSection = field(default_factory=ReviewSection)
    source: str = "defaults"

    @property
    def s3_base(self) -> str:
        return f"s3://{self.require('aws', 'bucket')}/{self.aws.prefix.strip('/')}"

    def require(self, section: str, key: str) -> Any:
        value = getattr(self._section(section), key)
        if value in ("", None):
            raise ConfigError(f"{section}.{key} is not set (in {self.source}, "
                              f"{ENV_PREFIX}{section.upper()}_{key.upper()} or --set {section}.{key}=...)")
        return value

    def _section(self, name: str):
        return getattr(self, _ATTR.get(name, name))

    def set(self, dotted: str, raw: Any) -> None:
        """Set ``section.key`` (or ``train.hyperparameters.NAME``) from a raw value."""
        parts = dotted.split(".")
        if len(parts) == 3 and parts[:2] == ["train", "hyperparameters"]:
            self.train.hyperparameters[parts[2]] = raw
            return
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise ConfigError(f"unknown setting {dotted!r}: expected one of {', '.join(_SECTIONS)}.KEY")
        section = self._section(parts[0])
        names = {f.name for f in dataclasses.fields(section)}
        if parts[1] not in names:
            raise ConfigError(f"unknown setting {dotted!r}: {parts[0]} has {', '.join(sorted(names))}")
        setattr(section, parts[1], _coerce(dotted, raw, getattr(section, parts[1])))


_SECTIONS = ("aws", "images", "data", "train", "tune", "deploy", "audit", "lambda", "costs", "monitor", "review")
# ``lambda`` is a Python keyword, so its section lives in the ``function`` attribute.
_ATTR = {"lambda": "function"}


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if not isinstance(raw, str):
        ok = isinstance(raw, type(default)) or (isinstance(default, float) and isinstance(raw, int))
        if not ok or (isinstance(raw, bool) and not isinstance(default, bool)):
            raise ConfigError(f"{name}: expected {type(default).__name__}, got {raw!r}")
        return float(raw) if isinstance(default, float) else raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (list, dict)):
            value = json.loads(raw)
            if not isinstance(value, type(default)):
                raise ValueError(raw)
            return value
    except ValueError as exc:
        raise ConfigError(f"{name}: expected {type(default).__name__}, got {raw!r}") from exc
    return raw


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         overrides: list[str] | None = None) -> Config:
    """Defaults < TOML file < ORCHESTRATE_* env < ``section.key=value`` overrides."""
    cfg = Config()
    env = os.environ if env is None else env
    if path is not None and Path(path).is_file():
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        for section, values in doc.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: top-level key {section!r} is not a [section]")
            for key, value in values.items():
                if section == "train" and key == "hyperparameters":
                    if not isinstance(value, dict):
                        raise ConfigError(f"{path}: train.hyperparameters must be a table")
                    cfg.train.hyperparameters.update(value)
                else:
                    cfg.set(f"{section}.{key}", value)
        cfg.source = str(path)
    elif path is not None and Path(path).name != "orchestrate.toml":
        raise ConfigError(f"config file {path} not found")
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and name != f"{ENV_PREFIX}CONFIG":
            section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
            cfg.set(f"{section}.{key}", raw)
    for item in overrides or []:
        dotted, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        cfg.set(dotted.strip(), raw)
    return cfg
