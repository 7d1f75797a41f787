"""Shared by the training-at-scale tests: toolkit runs that are watched while they go."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from devtools.local_toolkit import TRAIN, toolkit_env


def start_toolkit(base: Path, extra_env: dict | None = None, launcher: bool = False) -> subprocess.Popen:
    """The toolkit's ``train`` (optionally behind our PID-1-safe launcher), output piped."""
    cmd = [sys.executable, "-m", "bincounter.training.launch", TRAIN] if launcher else [TRAIN]
    return subprocess.Popen(cmd, env=toolkit_env(base, extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def write_config(base: Path, name: str, doc: dict) -> None:
    (base / "input" / "config" / name).write_text(json.dumps(doc))


def final_digest(log: str) -> str:
    found = re.findall(r"final weights sha256 (\w+)", log)
    assert len(found) == 1, log[-3000:]
    return found[0]
