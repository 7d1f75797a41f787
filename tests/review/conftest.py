"""A real Label Studio server for the review tests: from its own venv (``make labelstudio``),
on a loopback port, SQLite in a temporary folder, its admin's token set without a person."""

from __future__ import annotations

import os
import secrets

import pytest

from devtools.label_studio import VENV, from_template, start_label_studio
from devtools.local_serve import free_port


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """(url, token, local_root): photos under local_root are what it can show."""
    if not (VENV / "bin" / "label-studio").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{VENV}: no Label Studio venv under CI (make test builds it: make labelstudio)")
        pytest.skip(f"no Label Studio venv at {VENV}: run `make labelstudio`")
    root = tmp_path_factory.mktemp("labelstudio")
    token = from_template(root / "data") or secrets.token_hex(20)  # the migrated copy starts 3x faster
    port = free_port()
    proc = start_label_studio(root / "data", port, token, root, root / "labelstudio.log")
    yield f"http://127.0.0.1:{port}", token, root
    proc.terminate()
    proc.wait(30)
