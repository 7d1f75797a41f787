"""The audit's first step: what was asked (``Request``, frozen) and the photos and metadata
it names (``Photos``, resolved once). No step after this one reads the command line, and
none writes back into what it was given.

Photos: an S3 prefix or a local folder (``--images``), a manifest (``--manifest``), or
manifests built over the source bucket from a Udacity file list or an id list. Metadata:
``--metadata``, else the ``metadata/`` beside the photos (ABID's layout) when there is one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from orchestrate.core import ids
from orchestrate.core.aws import S3Clients
from orchestrate.core.config import Config, ConfigError
from orchestrate.data import manifest


@dataclass(frozen=True)
class Request:
    """The flags of ``orchestrate audit``: which photos, their expected quantities, which model,
    where the report goes, and how the transform runs."""

    images: str = ""
    manifest: str = ""
    file_list: str = ""
    ids: str = ""
    job: str = ""          # join an existing transform job again
    metadata: str = ""
    expected: str = ""     # bin_id,expected_quantity CSV instead of metadata
    model_data: str = ""
    out: str = ""
    local: bool = False
    endpoint: str = ""     # --local: a serving container already running in batch mode
    dry_run: bool = False
    poll_seconds: float = 30.0

    @classmethod
    def from_args(cls, args: Any) -> "Request":
        """From the parsed flags (None, an unset flag, becomes the field's default)."""
        given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
        req = cls(**{k: v for k, v in given.items() if v is not None})
        req.check()
        return req

    def check(self) -> None:
        if self.local and (self.job or self.dry_run):
            raise ConfigError("--job and --dry-run concern a SageMaker transform job, not --local")
        if self.endpoint and not self.local:
            raise ConfigError("--endpoint is a local serving container: give it with --local")
        if self.local and not self.model_data:  # before any photo is downloaded
            raise ConfigError("--model-data: a model folder (model.json + model.onnx) or a model.tar.gz")

    @property
    def named(self) -> str:
        """The photos as the user named them (for the report)."""
        return self.images or self.manifest or self.file_list or self.ids or self.job

    def of_job(self, desc: dict) -> "Request":
        """This request with the photos a transform job read (``--job``: join it again)."""
        src = desc["TransformInput"]["DataSource"]["S3DataSource"]
        listed = src["S3DataType"] == "ManifestFile"
        return dataclasses.replace(self, manifest=src["S3Uri"] if listed else "",
                                   images="" if listed else src["S3Uri"], file_list="", ids="")


@dataclass(frozen=True)
class Photos:
    """The photos to count: in S3 (``listed``: what a transform job reads in place) or in a
    local folder; and where their metadata is when no flag says."""

    listed: manifest.Manifest | None = None
    uri: str = ""                    # the job's S3Uri; "" for manifests still to upload (``built``)
    data_type: str = "S3Prefix"      # S3Prefix | ManifestFile
    folder: Path | None = None
    metadata: str = ""
    built: dict[str, manifest.Manifest] = field(default_factory=dict)

    @property
    def count(self) -> int | None:
        return len(self.listed.keys) if self.listed else None

    def locations(self, names: Sequence[str]) -> dict[str, str]:
        """Where each sent photo is (``s3://`` or an absolute path), by bin id."""
        if self.folder is not None:
            return {manifest.bin_id(n): str((self.folder / PurePosixPath(n).name).resolve()) for n in names}
        prefix = self.listed.prefix if self.listed else ""
        return {manifest.bin_id(n): n if n.startswith("s3://") else prefix + n for n in names}


def sibling_metadata(photos: manifest.Manifest) -> str:
    """The metadata prefix of photos in an ABID ``bin-images/`` prefix, else ""."""
    found = manifest.from_listing(photos).get("metadata")
    return found.prefix if found else ""


def resolve(req: Request, cfg: Config, clients: S3Clients) -> Photos:
    """The photos ``req`` names; S3 is asked only for photos that are in S3."""
    if req.file_list or req.ids:
        built = manifest.build(cfg.data.source_bucket, ids.read_ids(req.file_list, req.ids))
        return Photos(built["images"], "", "ManifestFile", metadata=built["metadata"].prefix,
                      built={"images": built["images"], "metadata": built["metadata"]})
    if req.manifest:
        listed = manifest.read(clients.signed, req.manifest)
        return Photos(listed, req.manifest, "ManifestFile", metadata=sibling_metadata(listed))
    if not req.images:
        raise ConfigError("say which photos: --images s3://bucket/prefix/"
                          + (" or a folder (--images DIR)" if req.local else "")
                          + ", --manifest, --file-list or --ids")
    if not req.images.startswith("s3://"):
        if not req.local:
            raise ConfigError(f"--images {req.images}: a cloud audit reads s3:// photos; a folder needs --local")
        folder = Path(req.images)
        beside = folder.parent / "metadata"  # ABID's layout: images/ beside metadata/
        return Photos(folder=folder, metadata=str(beside) if beside.is_dir() else "")
    listed = manifest.list_images(clients.for_uri(req.images), req.images)
    return Photos(listed, listed.prefix, "S3Prefix", metadata=sibling_metadata(listed))
