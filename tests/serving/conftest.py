"""Fixtures for the serving tests: the app on the session's tiny model, a real
``serve`` process, and real and synthetic JPEGs."""

from __future__ import annotations

import pytest
from serving_helpers import loaded_app

from bincounter.serving.settings import ServeSettings
from devtools.local_serve import start_serve, stop


@pytest.fixture(scope="module")
def client(trained_model):
    return loaded_app(ServeSettings(model_dir=trained_model)).test_client()


@pytest.fixture(scope="session")
def real_jpegs(abid_sample) -> list[bytes]:
    """Eight real ABID photos spread over the shared sample."""
    paths = sorted((abid_sample / "images").glob("*.jpg"))
    return [p.read_bytes() for p in paths[:: max(1, len(paths) // 8)][:8]]


@pytest.fixture(scope="module")
def live_server(trained_model, tmp_path_factory):
    """The real ``serve`` (gunicorn + Flask) on a free loopback port: (process, url)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc, url = start_serve(trained_model, log, MODEL_SERVER_THREADS="2")
    try:
        yield proc, url
    finally:
        stop(proc)
