"""gunicorn's configuration for ``serve`` (``gunicorn -c python:bincounter.serving.gunicorn_conf``).

A gunicorn config module is read by executing it, so the settings are
resolved here; everything else lives in ``ServeSettings`` and ``create_app``.
"""

import os
import sys

from gunicorn.arbiter import Arbiter

from bincounter.modelcard import ModelCardError
from bincounter.serving import app as _app
from bincounter.serving.settings import ServeSettings, SettingsError

_settings = ServeSettings.from_env()
# gunicorn has not set up logging yet: plain stderr, once, in the master before it forks
try:
    for _note in _app.check_model_dir(_settings):
        print(f"serve: warning: {_note}", file=sys.stderr, flush=True)
except (ModelCardError, SettingsError) as _exc:
    print(f"serve: cannot serve: {_exc}", file=sys.stderr, flush=True)
    sys.exit(1)

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
threads = _settings.threads
# gunicorn's sync / gthread workers, answering requests its parser refuses with our JSON errors
worker_class = ("bincounter.serving.workers.JsonThreadWorker" if _settings.threads > 1
                else "bincounter.serving.workers.JsonSyncWorker")
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
# In batch mode (gthread workers) an idle keep-alive connection held each worker through the
# whole graceful timeout after SIGTERM (25 s measured; 0.7 s without): a mini-batch takes
# seconds, and a new loopback connection per request costs nothing.
keepalive = 0 if _settings.batch else 2
# The model is loaded in each worker after fork (ONNX Runtime sessions do not survive fork).
preload_app = False
wsgi_app = "bincounter.serving.gunicorn_conf:application()"
# gunicorn >= 25 opens a control socket in $HOME by default: not wanted in a container.
control_socket_disable = True
# One line per request comes from the app itself (with the request id).
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line",
                            "stream": "ext://sys.stderr"}},
    "formatters": {"line": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"}},
}


def post_fork(server, worker) -> None:
    """gunicorn's hook: each worker gets the configured read deadline."""
    worker.read_deadline_s = _settings.read_deadline


def _halt(exc: BaseException) -> None:
    # A worker exiting with WORKER_BOOT_ERROR makes the gunicorn master stop with
    # "Worker failed to boot": the container fails fast instead of pinging 503 forever.
    os._exit(Arbiter.WORKER_BOOT_ERROR)


def application():
    return _app.create_app(_settings, on_load_failure=_halt)
