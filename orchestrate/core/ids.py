"""Which bins a command is about, from the two list formats users have: the one owner of
reading them (``orchestrate data``, ``manifest`` and ``audit`` all take them).

* a Udacity ``file_list.json`` (``{"1": ["data/metadata/00004.json", ...]}``);
* an id list: one bin id per line, blank lines and ``#`` comments ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrate.core.config import ConfigError

_LIST_ENTRY = re.compile(r"(?:^|/)metadata/([^/]+)\.json$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class IdListError(ConfigError):
    """A file list or id list that cannot be used (the CLI reports it like a setting)."""


def read_file_list(path: str | Path) -> list[str]:
    """Ids from a Udacity ``file_list.json``, sorted, each once."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IdListError(f"file list {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise IdListError(f"file list {path}: expected an object of count -> list of metadata paths")
    ids, bad = [], []
    for entries in doc.values():
        for entry in entries if isinstance(entries, list) else [entries]:
            m = _LIST_ENTRY.search(str(entry))
            (ids if m else bad).append(m.group(1) if m else str(entry))
    if bad:
        raise IdListError(f"file list {path}: {len(bad)} entries are not .../metadata/<id>.json, "
                          f"first: {bad[0]!r}")
    return sorted(set(ids))


def read_id_list(path: str | Path) -> list[str]:
    """Bin ids, one per line, sorted, each once."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IdListError(f"id list {path}: {exc}") from exc
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise IdListError(f"id list {path}: {len(bad)} lines are not bin ids, first: {bad[0]!r}")
    if not ids:
        raise IdListError(f"id list {path} holds no ids")
    return sorted(set(ids))


def read_ids(file_list: str = "", id_list: str = "") -> list[str]:
    """The bins of ``--file-list`` or ``--ids`` (exactly one given)."""
    if bool(file_list) == bool(id_list):
        raise IdListError("give one of --file-list or --ids")
    return read_file_list(file_list) if file_list else read_id_list(id_list)
