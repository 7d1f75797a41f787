"""``orchestrate shards --from-dir DIR --local``: the shard job (``orchestrate.data.shard_job``)
as a Processing job under the SageMaker SDK's own local mode, on the training image, with
``--instance-count`` containers.

The one step that differs from the cloud: the SDK's local mode accepts only FullyReplicated
inputs (``ShardedByS3Key`` raises "DataDistribution ... is not currently supported in Local
Mode"), so every container gets every part file and takes its own share by its place among the
job's hosts (``/opt/ml/config/resourceconfig.json``, which the SDK writes per host), the share
ShardedByS3Key would have given it. The bins folder is a second input (``file://``); the
containers write into the one output folder the SDK mounts in each, which it moves to ``out``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from orchestrate.core.config import ConfigError
from orchestrate.data.shard_job import PARTS_IN, SHARDS_OUT
from orchestrate.local import sdk

log = logging.getLogger(__name__)
BINS_IN = "/opt/ml/processing/input/bins"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"


def _input(name: str, folder: Path, local_path: str) -> dict:
    return {"InputName": name, "S3Input": {"S3Uri": f"file://{folder}", "LocalPath": local_path,
                                           "S3DataType": "S3Prefix", "S3InputMode": "File",
                                           "S3DataDistributionType": "FullyReplicated"}}


def request(image: str, name: str, parts: Path, bins: Path, out: Path, instances: int, shard_mb: float,
            seed: int) -> dict:
    command = ["python", "-m", "orchestrate", "shards", "--from-parts", PARTS_IN, "--bins", BINS_IN,
               "--host-share", RESOURCE_CONFIG, "--out", SHARDS_OUT, "--shard-mb", str(shard_mb),
               "--split-seed", str(seed)]
    return {"ProcessingJobName": name, "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": command},
            "ProcessingInputs": [_input("parts", parts, PARTS_IN), _input("bins", bins, BINS_IN)],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "shards", "S3Output": {
                "S3Uri": f"file://{out}", "LocalPath": SHARDS_OUT, "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": instances, "InstanceType": "local",
                                                      "VolumeSizeInGB": 30}}}


def shards(image: str, bins: Path, parts: list[list[str]], out: Path, instances: int, shard_mb: float, seed: int,
           region: str, root: Path) -> None:
    """Part files under ``root``, then the local Processing job; its shards land in ``out``."""
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: not empty; the local job writes a new folder of shards")
    (root / "parts").mkdir(parents=True)
    for n, ids in enumerate(parts):
        (root / "parts" / f"part-{n:05d}.txt").write_text("\n".join(ids) + "\n")
    req = request(image, root.name, root / "parts", bins, out, instances, shard_mb, seed)
    log.info("local processing job %s: %d parts on %d instances of %s", root.name, len(parts), instances, image)
    session = sdk.sdk_session(region)
    with sdk.stoppable(reap=True):
        session.sagemaker_client.create_processing_job(**req)
    status = session.sagemaker_client.describe_processing_job(root.name)
    if status.get("ProcessingJobStatus") != "Completed":
        raise ConfigError(f"local processing job {root.name}: {status.get('ProcessingJobStatus')} "
                          f"{status.get('FailureReason', '')}".strip())
