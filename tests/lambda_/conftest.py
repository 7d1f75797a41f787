"""Fixtures for the Lambda front door: a real ``serve`` on loopback, the runtime
emulator in front of it, real boto3 clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.local_serve import start_serve
from devtools.local_serve import stop as stop_process
from lambda_helpers import ENDPOINT, FAKE_AWS, SERVE, client, handler


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Fake credentials, no real AWS config, and no client left over from another test."""
    for key in list(os.environ):
        if key.startswith("AWS_") or key in ("ENDPOINT_NAME", "S3_ALLOWED_PREFIX", "CORS_ALLOW_ORIGIN"):
            monkeypatch.delenv(key)
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    handler._clients.clear()
    yield
    handler._clients.clear()


@pytest.fixture(scope="session")
def model_server(trained_model):
    """The real ``serve`` (gunicorn + Flask, 1 worker) on a free loopback port."""
    if not Path(SERVE).exists():
        pytest.skip(f"{SERVE} not installed (the serving package provides it)")
    proc, url = start_serve(trained_model)
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
def runtime_emulator(model_server):
    """The local SageMaker Runtime with endpoint ``bincounter`` in front of the real server."""
    from devtools.runtime_emulator import RuntimeEmulator

    emulator = RuntimeEmulator({ENDPOINT: model_server}).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def settings():
    return handler.Settings(ENDPOINT, max_attempts=1, read_timeout=30)


@pytest.fixture
def runtime_client(runtime_emulator, settings):
    return client("sagemaker-runtime", runtime_emulator.url, settings)


@pytest.fixture
def bins_bucket(moto_server, bin_jpegs):
    """Bucket ``bincounter-test`` with one bin photo at incoming/bin.jpg and one outside the prefix."""
    s3 = client("s3", moto_server)
    s3.create_bucket(Bucket="bincounter-test")
    s3.put_object(Bucket="bincounter-test", Key="incoming/bin.jpg", Body=bin_jpegs[3],
                  ContentType="image/jpeg")
    s3.put_object(Bucket="bincounter-test", Key="private/bin.jpg", Body=bin_jpegs[3])
    yield s3
    for key in ("incoming/bin.jpg", "private/bin.jpg"):
        s3.delete_object(Bucket="bincounter-test", Key=key)
    s3.delete_bucket(Bucket="bincounter-test")
