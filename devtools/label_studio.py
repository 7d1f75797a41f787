"""A real Label Studio server on this machine, set up without a person: from its own venv
(``make labelstudio``: requirements/labelstudio.lock), SQLite in a data folder, an admin user
whose legacy API token is the one given, local files served from ``local_root``.

    python -m devtools.label_studio --data build/labelstudio --port 8090 --local-root "$PWD"

prints the URL and waits; the token comes from LABEL_STUDIO_API_KEY (the variable the
review commands read) and is never printed. The tests and ``make bench-review`` start it
the same way. Compose's ``review`` profile runs the same package in a container.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-labelstudio"
TEMPLATE = VENV / "template"
DATABASE = "label_studio.sqlite3"
ADMIN = "admin@bincounter.local"
# the shortest API token accepted (labelstudio-image/Dockerfile refuses shorter ones too): the
# token is the admin's key to every project, and a short one can be guessed
MIN_TOKEN = 20
# no calls home: error reports to Sentry, usage analytics, the PyPI version check (the same in
# labelstudio-image/Dockerfile)
OFFLINE = {"SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false"}


def environment(data: Path, token: str, local_root: Path, password: str) -> dict[str, str]:
    """Label Studio's settings for a headless start: the admin made from these variables at
    first start, legacy tokens on (its organisation disables them by default since 1.2x)."""
    return {"LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_USERNAME": ADMIN,
            "LABEL_STUDIO_PASSWORD": password, "LABEL_STUDIO_USER_TOKEN": token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(local_root),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "DJANGO_DEBUG": "false", **OFFLINE}


def from_template(data: Path) -> str:
    """Fill an empty ``data`` folder from the migrated template ``make labelstudio`` leaves
    (a first start spends ~30 s migrating a fresh database; a copy starts in ~10 s) and
    return the template admin's token (made at random on this machine). "" without one."""
    if not (TEMPLATE / "token").is_file() or (data / DATABASE).exists():
        return ""
    shutil.copytree(TEMPLATE / "data", data, dirs_exist_ok=True)
    return (TEMPLATE / "token").read_text().strip()


def make_template(port: int = 0) -> Path:
    """Migrate a fresh database once, with an admin whose token is random (``make labelstudio``)."""
    import secrets

    from devtools.local_serve import free_port

    shutil.rmtree(TEMPLATE, ignore_errors=True)
    token = secrets.token_hex(20)
    proc = start_label_studio(TEMPLATE / "data", port or free_port(), token, TEMPLATE, TEMPLATE / "template.log")
    proc.terminate()
    proc.wait(60)
    (TEMPLATE / "token").write_text(token)
    (TEMPLATE / "token").chmod(0o600)
    return TEMPLATE


def start_label_studio(data: Path, port: int, token: str, local_root: Path, log_file: Path,
                       password: str = "bincounter-local", public_url: str = "") -> subprocess.Popen:
    """Label Studio on 127.0.0.1:``port``; returns once ``/health`` answers (a first start on
    an empty folder runs its migrations: about 30 s on 2 cores). ``public_url``: where browsers
    reach it, when that is not its own port (its pages name their assets and API by it)."""
    exe = VENV / "bin" / "label-studio"
    if not exe.is_file():
        raise FileNotFoundError(f"{exe}: run `make labelstudio` first (its own venv, requirements/labelstudio.lock)")
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment(data, token, local_root, password)}
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1",
                                 "--port", str(port), "--host", public_url or f"http://127.0.0.1:{port}"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {proc.returncode}: see {log_file}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise RuntimeError(f"Label Studio did not answer /health within 240 s: see {log_file}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "build" / "labelstudio")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--local-root", type=Path, default=ROOT)
    p.add_argument("--make-template", action="store_true", help="migrate the template database (make labelstudio)")
    a = p.parse_args(argv)
    if a.make_template:
        print(f"Label Studio template: {make_template()}")
        return 0
    token = os.environ.get("LABEL_STUDIO_API_KEY", "")
    if len(token) < MIN_TOKEN:
        print(f"set LABEL_STUDIO_API_KEY to the admin's API token ({MIN_TOKEN} characters or more, e.g. "
              "python3 -c 'import secrets; print(secrets.token_hex(20))')", file=sys.stderr)
        return 2
    proc = start_label_studio(a.data, a.port, token, a.local_root.resolve(), a.data / "labelstudio.log")
    print(f"Label Studio at http://127.0.0.1:{a.port} (user {ADMIN}, token from LABEL_STUDIO_API_KEY); "
          f"local files under {a.local_root.resolve()}; Ctrl-C stops it")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
