"""``review export --purpose training``'s steps: the audited bins (audit.csv) -> the scoring pass
when the strategy needs the model's probabilities or embedding (``pool``) -> B bins picked by
the strategy (``picks``) -> the bins to put before people, in pick order.

Bins already in the Label Studio project (answered or waiting) are never picked again, nor are
bins the audit could not count.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from orchestrate.core.config import ConfigError
from orchestrate.core.store import split_s3
from orchestrate.review import picks, pool
from orchestrate.review.tasks import Recount, audited, from_audit

# strategies that read only audit.csv; the others need the scoring pass (--model)
WITHOUT_MODEL = ("random", "recount-head", "per-count")


def model_folder(model: str, clients, work: Path) -> Path:
    """``--model``: a model folder (model.json + model.onnx), or a model.tar.gz (local or s3://)
    unpacked into ``work``."""
    if not model.startswith("s3://") and Path(model).is_dir():
        return Path(model)
    archive = Path(model)
    if model.startswith("s3://"):
        bucket, key = split_s3(model)
        archive = work / "model.tar.gz"
        clients.for_uri(model).download_file(bucket, key, str(archive))
    if not archive.is_file():
        raise ConfigError(f"--model {model}: not a model folder or a model.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work / "model", filter="data")
    return work / "model"


def reader(clients) -> Callable[[str], bytes]:
    def read(photo: str) -> bytes:
        if photo.startswith("s3://"):
            bucket, key = split_s3(photo)
            return clients.for_uri(photo).get_object(Bucket=bucket, Key=key)["Body"].read()
        return Path(photo).read_bytes()
    return read


def picked(audit: str, strategy: str, budget: int, seed: int, model: str | None, skip: set[str],
           clients) -> list[Recount]:
    """The ``budget`` bins ``strategy`` picks among the audit's counted bins not in ``skip``."""
    if strategy not in picks.STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: one of {', '.join(picks.STRATEGIES)}")
    if strategy not in WITHOUT_MODEL and not model:
        raise ConfigError(f"--strategy {strategy} reads each bin's probabilities and embedding: give --model "
                          "(the audited model's folder or model.tar.gz) for the scoring pass")
    s3 = clients.for_uri(audit) if audit.startswith("s3://") else None
    rows = [r for r in audited(audit, s3) if r.bin_id not in skip]
    recount_list = [r.bin_id for r in from_audit(audit, s3)]
    scored = None
    if model:
        with tempfile.TemporaryDirectory(prefix="bincounter-model-") as tmp:
            folder = model_folder(model, clients, Path(tmp))
            scored = pool.score(folder, [(r.bin_id, r.photo) for r in rows], reader(clients))
        for bin_id, why in scored.unreadable:
            print(f"review export: bin {bin_id} left out (its photo could not be scored): {why}")
    by_id = {r.bin_id: r for r in rows}
    return [by_id[i] for i in picks.pick(strategy, pool.pool_of(rows, recount_list, scored), budget, seed)]
