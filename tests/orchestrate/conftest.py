"""orchestrate's test set-up on the root ``aws`` fixture (a moto server on loopback):
configs for a test stack and the public ABID bucket seeded in moto."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from aws_helpers import REGION, ROLE_ARN


@pytest.fixture
def make_cfg(tmp_path):
    """A Config for a test stack, with overrides as ``section.key=value`` strings."""
    from orchestrate.core.config import load

    def make(*overrides: str, stack: str = "t1"):
        return load(None, env={}, overrides=[f"aws.role_arn={ROLE_ARN}", "aws.bucket=models",
                                             "aws.prefix=exp1", f"aws.stack={stack}",
                                             f"data.local_dir={tmp_path / 'abid'}", *overrides])
    return make


SOURCE_BUCKET = "aft-vbi-pds"


@pytest.fixture(scope="session")
def abid_objects() -> dict[str, bytes]:
    """110 objects in ABID's bucket layout, made here (no shared sample needed): ABID-schema
    metadata JSON (``bincounter.synth.metadata_for``) and a 64 px photo drawn with that bin's
    count. Ids 00001-00110: 20 bins of each count 1..5 plus 5 empty and 5 with 6+ items
    (outside the task's range), interleaved so any id range holds several counts."""
    import io
    import json
    import random

    from bincounter.synth import draw_bin, metadata_for

    counts = [c for _ in range(20) for c in range(1, 6)] + [0] * 5 + [6, 7, 8, 10, 12]
    random.Random(1).shuffle(counts)
    rng = random.Random(0)
    objects: dict[str, bytes] = {}
    for i, count in enumerate(counts, start=1):
        sid = f"{i:05d}"
        image, skus = draw_bin(rng, min(count, 9) or 1, 64)
        skus = (skus * 2)[:count]  # the metadata states the bin's count, photos draw at most 9
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        objects[f"metadata/{sid}.json"] = json.dumps(metadata_for(skus, f"{sid}.jpg"), indent=4).encode()
        objects[f"bin-images/{sid}.jpg"] = buf.getvalue()
    return objects


@pytest.fixture
def source_bucket(aws, abid_objects) -> dict[str, bytes]:
    """The seeded stand-in for s3://aft-vbi-pds in moto (seeded by a client that is not recorded)."""
    s3 = boto3.client("s3", region_name=REGION, config=Config(max_pool_connections=16))
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    # Like the real public dataset bucket: anyone may list and read, unsigned.
    s3.put_bucket_policy(Bucket=SOURCE_BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{SOURCE_BUCKET}/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": f"arn:aws:s3:::{SOURCE_BUCKET}"}]}))
    # moto answers an anonymous HeadObject with 403 despite the bucket policy (GetObject is
    # fine); a public-read ACL on each object gets HEAD through as on the real bucket.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=SOURCE_BUCKET, Key=kv[0], Body=kv[1], ACL="public-read"),
                      abid_objects.items()))
    s3.create_bucket(Bucket="models")
    return abid_objects


@pytest.fixture(scope="session")
def diverging_trial(diverging_run) -> Path:
    """The lr 10 run's smdebug trial folder: what SageMaker would have uploaded."""
    return diverging_run[0] / "output" / "tensors"


LAYER_BLOBS = "moto-ecr-blobs"


@pytest.fixture
def push_training_image(aws, monkeypatch):
    """``push(labels, tag)``: an image in moto's ECR whose config carries ``labels``; its URI.

    moto stores manifests (PutImage, BatchGetImage) but not blobs, and has no
    GetDownloadUrlForLayer. The set-up fills that gap the way ECR does: the config
    blob sits in (moto's) S3 and GetDownloadUrlForLayer answers a presigned URL for it."""
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse

    s3 = boto3.client("s3", region_name=REGION)  # not the recorded session: set-up only
    s3.create_bucket(Bucket=LAYER_BLOBS)

    def get_download_url_for_layer(self):
        digest = self._get_param("layerDigest")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": LAYER_BLOBS, "Key": digest})
        return ActionResult({"downloadUrl": url, "layerDigest": digest})

    monkeypatch.setattr(ECRResponse, "get_download_url_for_layer", get_download_url_for_layer)
    ecr = boto3.client("ecr", region_name=REGION)

    def push(labels: dict[str, str] | None, tag: str = "latest", repo: str = "bincounter-training") -> str:
        try:
            ecr.create_repository(repositoryName=repo)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": labels, "Env": ["PATH=/opt/venv/bin"]}}).encode()
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        s3.put_object(Bucket=LAYER_BLOBS, Key=digest, Body=config)
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "size": len(config), "digest": digest}, "layers": []}
        ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag=tag)
        uri = ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryUri"]
        return f"{uri}:{tag}"

    return push
