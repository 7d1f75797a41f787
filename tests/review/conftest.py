"""A real Label Studio server for the review tests: from its own venv (``make labelstudio``),
on a loopback port, SQLite in a temporary folder, its admin's token set without a person;
behind it, a proxy on another port through which a headless browser is signed in."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser_proxy import CookieProxy
from devtools.label_studio import VENV, from_template, start_label_studio
from devtools.local_serve import free_port


@dataclass(frozen=True)
class Server:
    url: str            # Label Studio itself (the API)
    token: str
    root: Path          # its local-files document root: photos under it can be shown
    proxy: CookieProxy  # where a browser reaches it (its public URL)

    def __iter__(self):  # (url, token, root), as the API tests unpack it
        return iter((self.url, self.token, self.root))

    def __getitem__(self, i: int):
        return (self.url, self.token, self.root)[i]


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    if not (VENV / "bin" / "label-studio").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{VENV}: no Label Studio venv under CI (make test builds it: make labelstudio)")
        pytest.skip(f"no Label Studio venv at {VENV}: run `make labelstudio`")
    root = tmp_path_factory.mktemp("labelstudio")
    token = from_template(root / "data") or secrets.token_hex(20)  # the migrated copy starts 3x faster
    proxy = CookieProxy(free_port()).start()
    port = free_port()
    proc = start_label_studio(root / "data", port, token, root, root / "labelstudio.log", public_url=proxy.url)
    proxy.upstream = f"http://127.0.0.1:{port}"
    yield Server(proxy.upstream, token, root, proxy)
    proc.terminate()
    proc.wait(30)
    proxy.stop()
