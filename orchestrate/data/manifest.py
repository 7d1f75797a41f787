"""SageMaker manifest files over the public ABID bucket (or any S3 prefix): no copies.

A manifest (training channels and Batch Transform input alike) is a JSON array
``[{"prefix": "s3://bucket/prefix/"}, "relative/key-1", ...]`` naming objects
that SageMaker reads in place. The one constraint: the bucket must be in the
job's region; ``aft-vbi-pds`` is in us-east-1 (other regions copy the data
with ``orchestrate data``).

From a Udacity ``file_list.json``, an id list or a listing of an S3 prefix,
``build`` makes three manifests of the same bins:

* ``images``: ``bin-images/<id>.jpg`` under the bucket's ``bin-images/`` (Batch Transform input);
* ``metadata``: ``metadata/<id>.json`` (the expected quantities, read in place by the audit);
* ``training``: both, relative to the bucket's root, so a training channel receives the
  bucket's own ``bin-images/`` + ``metadata/`` layout, which the training loader reads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from bincounter.reviews import bin_id  # the core's one owner of a photo's bin id (the audit takes it from here)
from orchestrate.core.config import ConfigError
from orchestrate.core.store import S3UriError, list_keys, split_s3

log = logging.getLogger(__name__)

IMAGES_DIR = "bin-images/"
METADATA_DIR = "metadata/"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ManifestError(ConfigError):
    """An id list, listing or manifest file that cannot be used (the CLI reports it like a setting)."""


@dataclass(frozen=True)
class Manifest:
    """One manifest: every object is ``prefix + key``."""

    prefix: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            split_s3(self.prefix)
        except S3UriError as exc:
            raise ManifestError(f"manifest prefix: {exc}") from exc
        if not self.prefix.endswith("/"):
            raise ManifestError(f"manifest prefix {self.prefix!r} must end with '/'")

    def to_json(self) -> str:
        return json.dumps([{"prefix": self.prefix}, *self.keys], indent=0)

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest") -> "Manifest":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{where} is not JSON: {exc}") from exc
        if (not isinstance(doc, list) or not doc or not isinstance(doc[0], dict)
                or not isinstance(doc[0].get("prefix"), str)):
            raise ManifestError(f"{where}: expected [{{\"prefix\": \"s3://...\"}}, \"key\", ...]")
        keys = doc[1:]
        bad = [k for k in keys if not isinstance(k, str) or not k]
        if bad:
            raise ManifestError(f"{where}: {len(bad)} entries are not keys, first: {bad[0]!r}")
        return cls(doc[0]["prefix"], tuple(keys))

    @property
    def bucket(self) -> str:
        return split_s3(self.prefix)[0]

    def uris(self) -> list[str]:
        return [self.prefix + k for k in self.keys]


def list_images(s3, uri: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Manifest:
    """Every image object under ``s3://bucket/prefix/`` (at any depth), keys relative to it."""
    bucket, prefix = split_s3(uri if uri.endswith("/") else uri + "/")
    prefix = prefix.lstrip("/")
    keys = [k[len(prefix):] for k in list_keys(s3, bucket, prefix) if k.lower().endswith(suffixes)]
    if not keys:
        raise ManifestError(f"no image ({', '.join(suffixes)}) under s3://{bucket}/{prefix}")
    log.info("listed %d images under s3://%s/%s", len(keys), bucket, prefix)
    return Manifest(f"s3://{bucket}/{prefix}", tuple(sorted(keys)))


def build(bucket: str, ids: list[str]) -> dict[str, Manifest]:
    """The images, metadata and training manifests of ``ids`` in an ABID-layout bucket."""
    if not ids:
        raise ManifestError("no bin ids to build manifests from")
    ids = sorted(set(ids))
    root = f"s3://{bucket}/"
    return {"images": Manifest(root + IMAGES_DIR, tuple(f"{i}.jpg" for i in ids)),
            "metadata": Manifest(root + METADATA_DIR, tuple(f"{i}.json" for i in ids)),
            "training": Manifest(root, tuple(k for i in ids for k in (f"{IMAGES_DIR}{i}.jpg",
                                                                       f"{METADATA_DIR}{i}.json")))}


def from_listing(images: Manifest, metadata_prefix: str = "") -> dict[str, Manifest]:
    """Manifests for listed images; their metadata too when its prefix is given, or when the
    images sit in an ABID ``bin-images/`` folder (then the sibling ``metadata/`` holds it)."""
    out = {"images": images}
    if not metadata_prefix and images.prefix.endswith("/" + IMAGES_DIR):
        metadata_prefix = images.prefix[: -len(IMAGES_DIR)] + METADATA_DIR
    if metadata_prefix:
        out["metadata"] = Manifest(metadata_prefix if metadata_prefix.endswith("/") else metadata_prefix + "/",
                                   tuple(f"{bin_id(k)}.json" for k in images.keys))
    return out


def write(manifests: dict[str, Manifest], out_dir: str | Path) -> dict[str, Path]:
    """``<name>.manifest`` files in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, m in manifests.items():
        paths[name] = out_dir / f"{name}.manifest"
        paths[name].write_text(m.to_json(), encoding="utf-8")
    return paths


def upload(s3, manifests: dict[str, Manifest], bucket: str, prefix: str) -> dict[str, str]:
    """Put each manifest at ``s3://bucket/prefix/<name>.manifest``; returns the URIs. Only the
    manifests are written: the objects they name stay where they are."""
    base = prefix.strip("/")
    uris = {}
    for name, m in manifests.items():
        key = f"{base}/{name}.manifest" if base else f"{name}.manifest"
        s3.put_object(Bucket=bucket, Key=key, Body=m.to_json().encode(), ContentType="application/json")
        uris[name] = f"s3://{bucket}/{key}"
        log.info("%s manifest: %d objects under %s -> %s", name, len(m.keys), m.prefix, uris[name])
    return uris


def read(s3, uri: str) -> Manifest:
    """A manifest from S3."""
    bucket, key = split_s3(uri)
    return Manifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), uri)


def check_region(manifest: Manifest, source_bucket: str, source_region: str, job_region: str) -> None:
    """A manifest channel's bucket must be in the job's region (SageMaker reads it in place)."""
    if manifest.bucket == source_bucket and source_region != job_region:
        raise ManifestError(
            f"the manifest names objects in s3://{source_bucket}, which is in {source_region}, but the job "
            f"runs in {job_region}: SageMaker reads a channel only from a bucket in the job's region. Run "
            f"the job in {source_region}, or copy the data into your bucket with `orchestrate data`")
