"""`orchestrate shards` on many bins: a SageMaker Processing job on the training image, N instances,
each packing its own part of the bins (``ShardedByS3Key``), and the step each instance runs.

The bins (a manifest, a Udacity file list, an id list, or every photo under a prefix) are cut
into part files of ids in id order, under ``<out>parts/``; the job hands each instance a share
of them; an instance reads its bins' photos and metadata from the source bucket (unsigned for the
public one, as `orchestrate data` does) and writes the shards of each part with
``bincounter.shards``. Shards its output already holds are skipped, so a job run again after a
failure writes only what is missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from bincounter.shards import BinSource, write_part
from orchestrate.core.aws import S3Clients, tags, unique_name
from orchestrate.core.config import Config
from orchestrate.core.store import list_keys, split_s3
from orchestrate.data.manifest import IMAGES_DIR, METADATA_DIR

PARTS_IN = "/opt/ml/processing/input/parts"
SHARDS_OUT = "/opt/ml/processing/output/shards"
IDS_PER_PART = 20_000
# an ABID photo and its metadata, on average (~43 KB + ~2 KB): how many bins make a shard of
# shard_mb when sizes are not listed first (a HEAD per bin would double the requests)
MEAN_BIN_BYTES = 45_000
# bins fetched at once by an instance (two GETs a bin): latency-bound, not CPU-bound, up to the
# boto3 client's pool of 32 connections (make bench-data: ~17 bins/s with one)
READERS = 16
# network-bound work (GETs from the source bucket, PUTs of the shards at the end): a small instance
DEFAULT_INSTANCE = "ml.m5.large"


def parts_of(ids: list[str], instances: int) -> list[list[str]]:
    """The ids in id order, cut into at least ``instances`` parts of at most IDS_PER_PART."""
    ids = sorted(set(ids))
    n = max(instances, math.ceil(len(ids) / IDS_PER_PART))
    size = math.ceil(len(ids) / n)
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def upload_parts(s3, parts: list[list[str]], out: str) -> str:
    """``<out>parts/part-<n>.txt``, one id a line; the prefix."""
    bucket, prefix = split_s3(out.rstrip("/") + "/parts/")
    for n, ids in enumerate(parts):
        s3.put_object(Bucket=bucket, Key=f"{prefix}part-{n:05d}.txt", Body=("\n".join(ids) + "\n").encode())
    return f"s3://{bucket}/{prefix}"


def request(cfg: Config, image: str, name: str, parts: str, out: str, instances: int, instance_type: str,
            shard_mb: float, seed: int) -> dict:
    command = ["python", "-m", "orchestrate", "shards", "--from-parts", PARTS_IN, "--out", SHARDS_OUT,
               "--skip-in", out, "--shard-mb", str(shard_mb), "--split-seed", str(seed)]
    return {"ProcessingJobName": name, "RoleArn": cfg.aws.role_arn,
            "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": command},
            "ProcessingInputs": [{"InputName": "parts", "S3Input": {
                "S3Uri": parts, "LocalPath": PARTS_IN, "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "ShardedByS3Key"}}],
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": instances, "InstanceType": instance_type,
                                                      "VolumeSizeInGB": 30}},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "shards", "S3Output": {
                "S3Uri": out, "LocalPath": SHARDS_OUT, "S3UploadMode": "EndOfJob"}}]},
            "StoppingCondition": {"MaxRuntimeInSeconds": 24 * 3600},
            "Environment": {"ORCHESTRATE_AWS_REGION": cfg.aws.region,
                            "ORCHESTRATE_DATA_SOURCE_BUCKET": cfg.data.source_bucket},
            "Tags": tags(cfg.aws.stack)}


def start(sm, s3, cfg: Config, image: str, ids: list[str], out: str, instances: int, instance_type: str,
          shard_mb: float, seed: int) -> dict:
    """Part files up, then CreateProcessingJob; the request sent."""
    parts = parts_of(ids, instances)
    req = request(cfg, image, unique_name(cfg.aws.stack, "shards"), upload_parts(s3, parts, out), out, instances,
                  instance_type, shard_mb, seed)
    sm.create_processing_job(**req)
    return req


def finished(s3, out: str) -> dict[str, dict]:
    """{shard name: its entry} of the shards the output prefix already holds (tar and entry both)."""
    bucket, prefix = split_s3(out.rstrip("/") + "/")
    keys = set(list_keys(s3, bucket, prefix))
    return {Path(k).name[: -len(".json")]: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            for k in keys if k.endswith(".tar.json") and k[: -len(".json")] in keys}


def s3_bins(ids: list[str], clients: S3Clients, source: str) -> list[BinSource]:
    """The bins of ``ids`` in an ABID-layout bucket, each read when its shard is written."""
    s3 = clients.for_bucket(source)

    def reader(key: str):
        def read() -> bytes:
            try:
                return s3.get_object(Bucket=source, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as exc:  # the bin's shard lists it, with this reason
                raise OSError(f"s3://{source}/{key}: {exc}") from None
        return read

    return [BinSource(i, MEAN_BIN_BYTES, reader(f"{IMAGES_DIR}{i}.jpg"), reader(f"{METADATA_DIR}{i}.json"))
            for i in ids]


def folder_bins_of(ids: list[str], root: Path) -> list[BinSource]:
    """The bins of ``ids`` in an ABID-layout folder (the local-mode job's input): a missing file
    is that bin's reason in its shard's entry, as a missing key is from S3."""
    def reader(path: Path):
        return path.read_bytes

    return [BinSource(i, MEAN_BIN_BYTES, reader(root / "images" / f"{i}.jpg"), reader(root / "metadata" / f"{i}.json"))
            for i in ids]


def host_share(parts: list[Path], resource_config: Path) -> list[Path]:
    """This host's share of ``parts`` by its place among the job's hosts: what ShardedByS3Key
    does in the cloud, done by the instance where the input is replicated (the SDK's local mode
    takes FullyReplicated only)."""
    config = json.loads(resource_config.read_text())
    hosts = sorted(config["hosts"])
    return sorted(parts)[hosts.index(config["current_host"])::len(hosts)]


def run_parts(parts: list[Path], out: Path, bins_of, shard_mb: float, seed: int, done: dict[str, dict]) -> list[dict]:
    """What one instance does: each part file it was given -> that part's shards and index;
    ``bins_of(ids)`` says where its bins are read (``s3_bins``, ``folder_bins_of``)."""
    return [write_part(bins_of(p.read_text().split()), out, p.stem.removeprefix("part-"),
                       shard_mb, seed, done=done, readers=READERS) for p in sorted(parts)]
