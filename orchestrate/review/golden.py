"""The golden evaluation set: labelled bins fixed once per stack, in the labels file shape
(``bincounter.reviews``), at ``s3://BUCKET/PREFIX/golden/golden.manifest`` (or a folder
locally). Made from people's counts (best: the bins the model found hard) or from a training
run's test split (the record's counts). Its sha256 names it wherever it is used: the model
cards that never trained on it and the scores ``promote`` keeps."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError

from bincounter.reviews import HumanLabel, LabelsError, digest, read_labels, write_labels
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.store import list_keys, split_s3

GOLDEN_FILE = "golden.manifest"


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


def make(source: Path, photos: str, out: Path) -> tuple[Path, str, int]:
    """``source`` (a labels file, or a split.json with ``photos``) -> out/golden.manifest;
    (path, sha256, n)."""
    if source.name.endswith(".json") and not source.name.endswith(".jsonl"):
        if not photos:
            raise ConfigError("a golden set from a split.json needs --photos: where the bins' photos are")
        labels = from_split(source, photos)
    else:
        labels = from_labels(source)
    if not labels:
        raise LabelsError(f"{source}: no bin with a count to make a golden set of")
    out.mkdir(parents=True, exist_ok=True)
    path = write_labels(out / GOLDEN_FILE, labels)
    return path, digest(path), len(labels)


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
