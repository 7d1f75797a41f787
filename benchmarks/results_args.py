"""The two ways a benchmark with a results JSON starts: ``--report`` prints the tables of an
earlier ``--json`` and runs nothing; without the real sample there is nothing to measure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable


def add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, help="write the results here (and read them back with --report)")
    p.add_argument("--report", action="store_true", help="print the tables of --json; run nothing")


def early_exit(a: argparse.Namespace, report: Callable[[dict], str]) -> int | None:
    """The exit code when the run ends before measuring (``--report``, no sample), else None."""
    if a.report:
        print(report(json.loads(a.json.read_text())))
        return 0
    if not (a.data / "metadata").is_dir():
        print(f"no ABID sample at {a.data} (it lives in ../shared): nothing to measure")
        return 1
    return None
