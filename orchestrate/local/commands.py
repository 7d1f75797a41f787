"""``orchestrate train / deploy / invoke --local``: config and flags into ``local_mode`` calls.

Runs our images through the SageMaker Python SDK's own local mode (docs/containers.md,
"Local mode"); needs Docker, no AWS account and no network.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from orchestrate.core import aws
from orchestrate.core import image_weights
from orchestrate.local import sdk
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.images import local_image

log = logging.getLogger(__name__)
# one folder per job or endpoint under here (build/ is git-ignored)
LOCAL_ROOT = "build/local"


def train(args, cfg: Config) -> int:
    """``orchestrate train --local``."""
    image, hps = local_image(cfg, "training"), {k: str(v) for k, v in cfg.train.hyperparameters.items()}
    image_weights.require_weights(image, image_weights.local_image_labels(image), hps, rebuild="make images",
                                  before="the container starts")
    data = Path(args.data or cfg.data.local_dir).resolve()
    if not data.is_dir():
        raise ConfigError(f"no training data at {data}: --data DIR (ABID layout or class folders)")
    channels = {}
    if args.calibration:
        channels["calibration"] = Path(args.calibration).resolve()
        if not (channels["calibration"] / "metadata").is_dir():
            raise ConfigError(f"--calibration {args.calibration}: with --local, a folder in ABID's layout "
                              "(images/, metadata/)")
    for name in ("labels", "golden"):  # bincounter.reviews files: a folder, or one file (its folder)
        given = getattr(args, name, None)
        if given:
            path = Path(given).resolve()
            if not path.exists():
                raise ConfigError(f"--{name} {given}: no such file or folder")
            channels[name] = path if path.is_dir() else path.parent
    job = aws.unique_name(cfg.aws.stack, "local")
    root = Path(args.local_root).resolve() / job
    log.info("local training job %s: %s on %s, SDK local mode under %s", job, image, data, root)
    try:
        print(sdk.train(image, data, hps, root, cfg.aws.region, job, channels))
    except sdk.LocalJobStopped as exc:
        reason = sdk.failure_reason(root)
        print(f"orchestrate train --local: {exc}; the container stopped"
              + (f": {reason}" if reason else ""), file=sys.stderr)
        return exc.exit_code
    return 0


def newest_local_model(local_root: str) -> Path:
    found = sorted(Path(local_root).glob("*/compressed_artifacts/model.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"no model.tar.gz under {local_root}: train --local first, or --model-data PATH")
    return found[-1]


def deploy(args, cfg: Config) -> int:
    """``orchestrate deploy --local``: serves until SIGTERM / Ctrl-C, then 0."""
    model = Path(args.model_data).resolve() if args.model_data else newest_local_model(args.local_root)
    root = Path(args.local_root).resolve() / aws.unique_name(cfg.aws.stack, "endpoint")

    def ready(desc: dict) -> None:
        print(f"endpoint {desc['EndpointName']} {desc['EndpointStatus']} on http://localhost:{args.port} "
              f"(SDK local mode, model {model}); stop it with Ctrl-C or SIGTERM", flush=True)

    try:
        sdk.serve(local_image(cfg, "serving"), model, root, cfg.aws.region, args.port, on_ready=ready)
    except sdk.LocalJobStopped as exc:
        print(f"endpoint {sdk.ENDPOINT} {exc}: container stopped", file=sys.stderr)
    return 0


def invoke(args, cfg: Config, body: bytes) -> int:
    """``orchestrate invoke --local``: through the SDK's local runtime client."""
    status, reply = sdk.invoke(body, args.content_type, args.port, cfg.aws.region, args.expected_quantity)
    print(reply.decode("utf-8", "replace"))
    return 0 if status == 200 else 1
