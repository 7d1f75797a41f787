"""``serve``: the serving image's command (``docker run IMAGE serve``).

Checks the settings, then replaces itself with gunicorn so that gunicorn is
PID 1 in the container and drains in-flight requests on SIGTERM. Kept to the
standard library: every import here is paid again after the exec.
"""

from __future__ import annotations

import logging
import os
import sys

from bincounter.serving.settings import ServeSettings, SettingsError

log = logging.getLogger(__name__)
GUNICORN_CONFIG = "python:bincounter.serving.gunicorn_conf"


def gunicorn_argv() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG]


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
    except SettingsError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    log.info("starting gunicorn: %s", settings)
    argv_ = gunicorn_argv()
    os.execv(argv_[0], argv_)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
