"""The golden evaluation set: labelled bins fixed once per stack, in the labels file shape
(``bincounter.reviews``), at ``s3://BUCKET/PREFIX/golden/golden.manifest`` (or a folder
locally). Made from a held-out part of people's counts (the rest trains) or from a training
run's test split (the record's counts). Its sha256 names it wherever it is used: the model
cards that never trained on it and the scores ``promote`` keeps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from bincounter.reviews import HumanLabel, LabelsError, digest, read_labels, write_labels
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.store import list_keys, split_s3

GOLDEN_FILE = "golden.manifest"
# people's counts left out of the golden set: the labels channel of the next training run
TRAINING_LABELS = "training-labels.jsonl"


def stack_prefix(cfg: Config) -> str:
    return f"{cfg.s3_base}/{cfg.review.golden_prefix.strip('/')}/"


def stack_golden(s3, cfg: Config) -> str:
    """The stack's golden prefix when a golden set is there, else "" (no bucket: "")."""
    if not cfg.aws.bucket:
        return ""
    bucket, key = split_s3(stack_prefix(cfg) + GOLDEN_FILE)
    try:
        return stack_prefix(cfg) if key in list_keys(s3, bucket, key) else ""
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucket":  # nothing of the stack there yet
            return ""
        raise


def from_split(split_json: Path, photos: str) -> list[HumanLabel]:
    """A training run's test split (output/data/split.json): the record's counts, not a person's."""
    doc = json.loads(split_json.read_text(encoding="utf-8"))
    base = photos.rstrip("/")
    return [HumanLabel(f"{base}/{e['id']}.jpg", str(e["count"]), expected_quantity=e["count"], human=False,
                       job="test-split") for e in doc["splits"]["test"]]


def from_labels(path: Path) -> list[HumanLabel]:
    """People's counts: only bins with a count (0-5) can be scored."""
    return [label for label in read_labels(path).values() if label.count is not None]


def hold_out(labels: list[HumanLabel], fraction: float, seed: int = 0) -> tuple[list[HumanLabel], list[HumanLabel]]:
    """(golden, rest): ``fraction`` of each count's bins, picked by a hash of the seed and the bin
    id (the same bins on every machine and run, whatever the file order), the rest for training."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"--holdout {fraction}: give a fraction in (0, 1] of people's counts for the golden set")
    by_count: dict[int | None, list[HumanLabel]] = {}
    for label in labels:
        by_count.setdefault(label.count, []).append(label)
    golden, rest = [], []
    for count in sorted(by_count, key=lambda c: (c is None, c)):
        ranked = sorted(by_count[count], key=lambda g: hashlib.sha256(f"{seed}:{g.bin_id}".encode()).hexdigest())
        take = round(fraction * len(ranked))
        golden += ranked[:take]
        rest += ranked[take:]
    return golden, rest


@dataclass(frozen=True)
class Made:
    path: Path
    sha256: str
    n: int
    rest: Path | None = None      # people's other counts, for training (``--labels``)
    rest_n: int = 0


def make(source: Path, photos: str, out: Path, holdout: float = 1.0, seed: int = 0) -> Made:
    """``source`` (a labels file, or a split.json with ``photos``) -> out/golden.manifest. From a
    labels file, ``holdout`` of its counted bins; every other line (can't tell, unresolved and
    6+ too) goes to out/training-labels.jsonl, the labels channel that never meets the golden set."""
    rest_path, rest = None, []
    if source.name.endswith(".json") and not source.name.endswith(".jsonl"):
        if not photos:
            raise ConfigError("a golden set from a split.json needs --photos: where the bins' photos are")
        labels = from_split(source, photos)
    else:
        everything = list(read_labels(source).values())
        labels, _ = hold_out([g for g in everything if g.count is not None], holdout, seed)
        chosen = {g.bin_id for g in labels}
        rest = [g for g in everything if g.bin_id not in chosen]
    if not labels:
        raise LabelsError(f"{source}: no bin with a count to make a golden set of")
    out.mkdir(parents=True, exist_ok=True)
    path = write_labels(out / GOLDEN_FILE, labels)
    if rest:
        rest_path = write_labels(out / TRAINING_LABELS, rest)
    return Made(path, digest(path), len(labels), rest_path, len(rest))


def upload_labels(s3, cfg: Config, path: Path) -> str:
    """A labels file (or folder of them) here -> the stack's labels prefix; the channel's URI."""
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"--labels {path}: no labels file there")
    read_labels(path)  # a broken file is refused here, not by the training job after it started
    base = f"{cfg.s3_base}/{cfg.review.labels_prefix.strip('/')}/uploads/{digest(path)[:16]}/"
    for f in files:
        bucket, key = split_s3(base + f.name)
        s3.upload_file(str(f), bucket, key)
    return base
