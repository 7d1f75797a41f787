"""S3 paths and stores: ``s3://bucket/key`` parsing, listing, and a ``Store`` that reads
objects under one S3 prefix or local folder alike (an audit's outputs and metadata, a
job's artifacts are either, by configuration)."""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError

from orchestrate.core.config import ConfigError


class S3UriError(ConfigError):
    """A location that should be ``s3://bucket/...`` and is not, or needs a client it lacks."""


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (bucket, "some/key")."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise S3UriError(f"{uri!r} is not an s3://bucket/... URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` in ``bucket``, all pages."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


class Store:
    """Objects under one S3 prefix or local folder, by key relative to it."""

    def __init__(self, uri: str, s3=None):
        self.uri = uri
        if uri.startswith("s3://"):
            if s3 is None:
                raise S3UriError(f"{uri}: an S3 client is needed to read it")
            self.bucket, prefix = split_s3(uri)
            self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
            self.s3, self.root = s3, None
        else:
            self.root, self.s3 = Path(uri), None

    def keys(self) -> list[str]:
        if self.root is not None:
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k[len(self.prefix):] for k in list_keys(self.s3, self.bucket, self.prefix))

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        if self.root is not None:
            path = self.root / key
            return path.read_bytes() if path.is_file() else None
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def read_text(self, uri: str) -> str:
        """One object named by a full ``s3://`` URI (this store's client) or a local path."""
        if uri.startswith("s3://"):
            bucket, key = split_s3(uri)
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        return Path(uri).read_text(encoding="utf-8")

    def where(self, key: str) -> str:
        return str(self.root / key) if self.root is not None else f"s3://{self.bucket}/{self.prefix}{key}"


def tar_members(source, names: set[str], s3=None) -> dict[str, bytes]:
    """The files called ``names`` (by base name, at any depth) in a ``.tar.gz``: an ``s3://``
    URI read with ``s3``, streamed (it stops reading once all are found, so a model artifact's
    weights are never downloaded for its model.json), or a local path. Missing ones are absent."""
    found: dict[str, bytes] = {}
    if str(source).startswith("s3://"):
        bucket, key = split_s3(str(source))
        opened = tarfile.open(fileobj=s3.get_object(Bucket=bucket, Key=key)["Body"], mode="r|gz")
    else:
        opened = tarfile.open(source, mode="r:gz")
    with opened as tar:
        for member in tar:
            name = PurePosixPath(member.name).name
            if member.isfile() and name in names and name not in found:
                found[name] = tar.extractfile(member).read()
                if len(found) == len(names):
                    break
    return found
