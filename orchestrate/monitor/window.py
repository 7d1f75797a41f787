"""The monitor's inputs: a window of capture files (an S3 prefix or a local folder, SageMaker's
``ENDPOINT/VARIANT/yyyy/mm/dd/hh/`` layout under it) and the model's card and reference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from bincounter.modelcard import MODEL_JSON, ModelCard
from bincounter.monitoring.capture import Window, hour_of
from bincounter.monitoring.reference import REFERENCE_FILE
from orchestrate.core.aws import S3Clients
from orchestrate.core.config import ConfigError
from orchestrate.core.store import Store, tar_members


def parse_time(text: str, flag: str) -> datetime | None:
    """``2026-12-03``, ``2026-12-03T08`` or a full ISO time, as UTC; "" is no bound."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text if len(text) != 13 else text + ":00")
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give a UTC time like 2026-12-03 or 2026-12-03T08:00") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@dataclass(frozen=True)
class Span:
    since: datetime | None = None
    until: datetime | None = None

    def holds(self, hour: datetime) -> bool:
        """A file of ``hour`` is in the window when the hour overlaps it."""
        return ((self.since is None or hour.timestamp() + 3600 > self.since.timestamp())
                and (self.until is None or hour < self.until))


def read(captures: str, span: Span, clients: S3Clients) -> tuple[Window, int, list[tuple[str, str]]]:
    """Every capture line of the window's files: (the window, how many files, the files that could
    not be read, each named with its reason: S3 failing after botocore's retries, a body cut
    short). A key outside the hour layout is read too (its lines carry no hour to filter on)."""
    store = Store(captures, clients.for_uri(captures) if captures.startswith("s3://") else None)
    if store.root is not None and not store.root.is_dir():
        raise ConfigError(f"--captures {captures}: no such folder")
    window, files, unread = Window(), 0, []
    for key in store.keys():
        if not key.endswith(".jsonl"):
            continue
        hour = hour_of(key)
        if hour is not None and not span.holds(hour):
            continue
        files += 1
        try:
            text = (store.get(key) or b"").decode("utf-8", "replace")
        except (ClientError, BotoCoreError, OSError) as exc:
            unread.append((store.where(key), str(exc)))
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            window.add(f"{store.where(key)}:{number}", line)
    return window, files, unread


def load_model(model_data: str, clients: S3Clients) -> tuple[ModelCard, dict]:
    """The card and the monitor's reference of a model folder or model.tar.gz (local or S3)."""
    names = {MODEL_JSON, REFERENCE_FILE}
    if model_data.startswith("s3://") or model_data.endswith((".tar.gz", ".tgz")):
        if not model_data.startswith("s3://") and not Path(model_data).is_file():
            raise ConfigError(f"--model-data {model_data}: no such file")
        s3 = clients.for_uri(model_data) if model_data.startswith("s3://") else None
        found = tar_members(model_data, names, s3)
    else:
        folder = Path(model_data)
        found = {n: (folder / n).read_bytes() for n in names if (folder / n).is_file()}
    if MODEL_JSON not in found:
        raise ConfigError(f"--model-data {model_data}: no {MODEL_JSON} in it")
    card = ModelCard.from_dict(json.loads(found[MODEL_JSON]))
    name = card.monitor.get("reference", REFERENCE_FILE)
    if name not in found:
        raise ConfigError(f"--model-data {model_data}: no {REFERENCE_FILE} beside {MODEL_JSON} (a model trained "
                          "before the monitor existed: retrain it, or monitor a newer one)")
    return card, json.loads(found[name])
