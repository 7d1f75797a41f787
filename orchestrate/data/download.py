"""``orchestrate data``: an ABID subset from S3, split, and uploaded as channels.

Download: anonymous reads from the source bucket (``bin-images/<id>.jpg`` +
``metadata/<id>.json``) into ``LOCAL/images`` + ``LOCAL/metadata``; parallel,
resumable (a local file whose size matches the object's and, for JSON, that
parses, is kept), atomic (temp file, checked against Content-Length and the
single-part ETag's MD5, then renamed). Then the core's stratified split and
an upload of ``training`` / ``validation`` / ``test`` channels (ABID layout)
plus ``split.json`` under ``s3://BUCKET/PREFIX/channels/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import ClientError

from bincounter.labels import DEFAULT_RANGE
from bincounter.metadata import MetadataError, parse_expected_quantity, read_expected_quantity
from bincounter.split import SPLITS, stratified_split, write_manifest
from orchestrate.core.progress import Progress

log = logging.getLogger(__name__)

CHANNELS = {"train": "training", "validation": "validation", "test": "test"}


class DataError(RuntimeError):
    """Downloads that failed, each key named."""


@dataclass
class DownloadReport:
    downloaded: int = 0
    intact: int = 0
    stale_temp_removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.downloaded} downloaded, {self.intact} already intact (kept), "
                f"{len(self.failed)} failed, {self.stale_temp_removed} stale temp files removed")


def keys_for(sid: str) -> list[tuple[str, str]]:
    """(S3 key, local relative path) of one bin's image and metadata."""
    return [(f"metadata/{sid}.json", f"metadata/{sid}.json"), (f"bin-images/{sid}.jpg", f"images/{sid}.jpg")]


def _intact(path: Path, size: int) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    if path.suffix == ".json":
        try:
            json.loads(path.read_bytes())
        except ValueError:
            return False
    return True


def _fetch(s3, bucket: str, key: str, path: Path) -> str:
    """'intact' or 'downloaded'; raises with the reason otherwise."""
    if path.exists():
        head = s3.head_object(Bucket=bucket, Key=key)
        if _intact(path, head["ContentLength"]):
            return "intact"
    obj = s3.get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read()
    if len(body) != obj["ContentLength"]:
        raise DataError(f"short read: {len(body)} of {obj['ContentLength']} bytes")
    etag = obj.get("ETag", "").strip('"')
    # A multipart ETag ("md5-N") is not the object's MD5; a single-part one is.
    if etag and "-" not in etag and hashlib.md5(body, usedforsecurity=False).hexdigest() != etag:
        raise DataError("content does not match the object's ETag (MD5)")
    if path.suffix == ".json":
        try:
            json.loads(body)
        except ValueError as exc:
            raise DataError(f"metadata is not JSON: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        tmp.write_bytes(body)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    finally:
        tmp.unlink(missing_ok=True)
    return "downloaded"


def download(s3, bucket: str, ids: list[str], dest: str | Path, workers: int = 16) -> DownloadReport:
    """Fetch image + metadata for every id into ``dest`` (ABID layout)."""
    dest = Path(dest)
    report = DownloadReport()
    for stale in list(dest.glob("*/.*.part-*")):
        stale.unlink()
        report.stale_temp_removed += 1
    jobs = [(key, dest / rel) for sid in ids for key, rel in keys_for(sid)]

    def one(job: tuple[str, Path]) -> tuple[str, str]:
        key, path = job
        try:
            return key, _fetch(s3, bucket, key, path)
        except (ClientError, DataError, OSError) as exc:
            return key, f"error: {exc}"

    with Progress(len(jobs), f"download s3://{bucket}") as bar, ThreadPoolExecutor(workers) as pool:
        for key, outcome in pool.map(one, jobs):
            bar.update()
            if outcome == "intact":
                report.intact += 1
            elif outcome == "downloaded":
                report.downloaded += 1
            else:
                report.failed.append((key, outcome.removeprefix("error: ")))
    for key, reason in report.failed:
        log.error("s3://%s/%s: %s", bucket, key, reason)
    log.info("download: %s", report.summary())
    return report


def pick_per_class(s3, bucket: str, per_class: int, workers: int = 16) -> list[str]:
    """The first ``per_class`` ids of each count 1..5, in key order of ``metadata/``."""
    wanted = {c: [] for c in DEFAULT_RANGE.counts}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="metadata/")

    def quantity(key: str) -> tuple[str, int | None]:
        try:
            return key, parse_expected_quantity(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except MetadataError as exc:
            log.warning("s3://%s/%s: %s; not picked", bucket, key, exc)
            return key, None

    with ThreadPoolExecutor(workers) as pool:
        for page in pages:
            keys = [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
            for key, qty in pool.map(quantity, keys):
                if qty in wanted and len(wanted[qty]) < per_class:
                    wanted[qty].append(Path(key).stem)
            if all(len(v) == per_class for v in wanted.values()):
                break
    short = {c: len(v) for c, v in wanted.items() if len(v) < per_class}
    if short:
        log.warning("s3://%s holds fewer than %d bins for counts %s", bucket, per_class, short)
    return sorted(i for v in wanted.values() for i in v)


def label(dest: str | Path, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """{id: count} for ids whose count is in range; and how many were dropped per reason."""
    labels, dropped = {}, {"out of range": 0, "unreadable metadata": 0}
    for sid in ids:
        meta = Path(dest) / "metadata" / f"{sid}.json"
        try:
            count = read_expected_quantity(meta)
        except MetadataError as exc:
            log.warning("%s: %s", meta, exc)
            dropped["unreadable metadata"] += 1
            continue
        if DEFAULT_RANGE.contains(count):
            labels[sid] = count
        else:
            dropped["out of range"] += 1
    log.info("labelled %d bins; dropped %s", len(labels), dropped)
    return labels, dropped


def upload_channels(s3, dest: str | Path, split: dict[str, list[str]], bucket: str, prefix: str,
                    workers: int = 16) -> dict[str, str]:
    """Upload each split as a channel folder; keeps objects already there with the same size."""
    dest = Path(dest)
    base = f"{prefix.strip('/')}/channels"
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{base}/"):
        existing.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    jobs = [(dest / rel, f"{base}/{CHANNELS[name]}/{rel}")
            for name in SPLITS for sid in split[name] for _, rel in keys_for(sid)]
    jobs.append((dest / "split.json", f"{base}/split.json"))
    todo = [(p, k) for p, k in jobs if existing.get(k) != p.stat().st_size or k.endswith("split.json")]
    with Progress(len(todo), f"upload s3://{bucket}/{base}") as bar, ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda job: s3.upload_file(str(job[0]), bucket, job[1]), todo):
            bar.update()
    # Left from an earlier split (another seed or file list): a bin must never sit in two channels.
    stale = sorted(set(existing) - {k for _, k in jobs})
    for i in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[i:i + 1000]], "Quiet": True})
    log.info("upload: %d objects sent, %d already there, %d stale removed",
             len(todo), len(jobs) - len(todo), len(stale))
    return {CHANNELS[name]: f"s3://{bucket}/{base}/{CHANNELS[name]}/" for name in SPLITS}


def run(source_s3, target_s3, *, source_bucket: str, ids: list[str], dest: str | Path, bucket: str,
        prefix: str, seed: int, fractions: tuple[float, float, float], workers: int = 16,
        skip_failed: bool = False) -> dict[str, str]:
    """Download, split, upload. Returns the channel URIs."""
    report = download(source_s3, source_bucket, ids, dest, workers)
    failed_ids = {Path(k).stem for k, _ in report.failed}
    if failed_ids and not skip_failed:
        raise DataError(f"{len(report.failed)} objects failed to download (listed above; "
                        f"first: {report.failed[0][0]}: {report.failed[0][1]}); re-run to resume, "
                        "or pass --skip-failed to go on without those bins")
    if failed_ids:
        log.warning("going on without %d bins whose download failed", len(failed_ids))
    labels, _ = label(dest, [i for i in ids if i not in failed_ids])
    if not labels:
        raise DataError("no bin with a count in 1..5 was downloaded")
    split = stratified_split(labels, seed=seed, fractions=fractions)
    write_manifest(Path(dest) / "split.json", split, labels, seed, fractions,
                   source=f"s3://{source_bucket}")
    return upload_channels(target_s3, dest, split, bucket, prefix, workers)
