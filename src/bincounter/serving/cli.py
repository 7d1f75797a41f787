"""``serve``: the serving image's command (``docker run IMAGE serve``).

Checks the settings and model.json, then replaces itself with gunicorn so that
gunicorn is PID 1 in the container and drains in-flight requests on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import sys

from bincounter.modelcard import ModelCard, ModelCardError
from bincounter.serving.settings import ServeSettings, SettingsError

log = logging.getLogger(__name__)
GUNICORN_CONFIG = "python:bincounter.serving.gunicorn_conf"


def gunicorn_argv() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG]


def check(settings: ServeSettings) -> None:
    """Fail before forking anything when the model directory or a setting is wrong."""
    card = ModelCard.read(settings.model_dir)
    settings.thresholds(card.verification)
    if not (settings.model_dir / card.onnx_file).is_file():
        raise ModelCardError(f"{settings.model_dir / card.onnx_file} not found "
                             f"(SM_MODEL_DIR={settings.model_dir})")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    # SageMaker runs the image with the argument "serve"; an ENTRYPOINT of serve sees it too.
    if args not in ([], ["serve"]):
        print(f"usage: serve  (configured by environment variables, got arguments {args})",
              file=sys.stderr)
        return 2
    try:
        settings = ServeSettings.from_env()
        check(settings)
    except (SettingsError, ModelCardError) as exc:
        log.error("cannot serve: %s", exc)
        return 1
    log.info("starting gunicorn: %s", settings)
    argv_ = gunicorn_argv()
    os.execv(argv_[0], argv_)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
