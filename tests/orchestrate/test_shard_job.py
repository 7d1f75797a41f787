"""`orchestrate shards` as a Processing job on moto: the bins cut into part files (each id once)
handed to N instances with ShardedByS3Key on the training image; each instance's own step
(`--from-parts`) run here on its share against the seeded public bucket: together the
instances hold every bin once, each in the split the folder path gives it, and a run again
skips the shards the job's output already holds."""

from __future__ import annotations

import json

import pytest
from aws_helpers import ROLE_ARN

from bincounter.shards import read_back
from bincounter.split import split_of
from orchestrate import cli
from orchestrate.data import shard_job
from orchestrate.core.store import split_s3

pytestmark = pytest.mark.slow  # moto

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
SETTINGS = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "--set", "aws.stack=t1", "--set", f"images.training_image={IMAGE}"]
OUT = "s3://models/exp1/shards/"


def test_the_job_hands_each_instance_its_parts_and_together_they_shard_every_bin_once(
        aws, source_bucket, tmp_path, monkeypatch, capsys):
    """Fails if the request's input said FullyReplicated (every instance would shard every bin:
    each bin twice), or if parts_of dropped the ids past the last full part."""
    monkeypatch.setattr(shard_job, "IDS_PER_PART", 40)  # 110 bins -> 3 parts for 2 instances
    ids = sorted({k.split("/")[1].split(".")[0] for k in source_bucket})
    (tmp_path / "ids.txt").write_text("\n".join(ids + ["99999"]) + "\n")  # one bin the bucket lacks
    assert cli.main([*SETTINGS, "shards", "--ids", str(tmp_path / "ids.txt"), "--instance-count", "2",
                     "--shard-mb", "0.3"], session=aws) == 0
    [req] = [p for _, op, p in aws.api_calls if op == "CreateProcessingJob"]
    [source] = req["ProcessingInputs"]
    assert source["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert req["AppSpecification"]["ImageUri"] == IMAGE and req["RoleArn"] == ROLE_ARN
    assert req["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == OUT
    # the part files: every id once, in id order
    s3 = aws.client("s3")
    bucket, prefix = split_s3(source["S3Input"]["S3Uri"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    parts = [s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().split() for k in keys]
    assert len(parts) == 3 and sum(parts, []) == sorted(ids + ["99999"])
    # ShardedByS3Key: instance 1 gets parts 0 and 2, instance 2 part 1 (any split does: each part once)
    for n, mine in enumerate((keys[0::2], keys[1::2])):
        folder = tmp_path / f"instance{n}" / "parts"
        folder.mkdir(parents=True)
        for k in mine:
            s3.download_file(bucket, k, str(folder / k.rsplit("/", 1)[1]))
        assert cli.main([*SETTINGS, "shards", "--from-parts", str(folder), "--out", str(tmp_path / f"out{n}"),
                         "--skip-in", OUT, "--shard-mb", "0.3"], session=aws) == 0
    held = {**read_back(tmp_path / "out0"), **read_back(tmp_path / "out1")}
    assert len(held) == len(read_back(tmp_path / "out0")) + len(read_back(tmp_path / "out1"))  # never twice
    unreadable = [u for n in (0, 1) for p in (tmp_path / f"out{n}").glob("index-*.json")
                  for s in json.loads(p.read_text())["shards"] for u in s["unreadable"]]
    assert set(held) == set(ids) and [u["bin_id"] for u in unreadable] == ["99999"]
    assert "NoSuchKey" in unreadable[0]["reason"] or "Not Found" in unreadable[0]["reason"]
    assert all(shard.startswith(split_of(b) + "-") for b, shard in held.items())
    # the job's output (SageMaker uploads it at the end) holds instance 0's shards: a run again skips them
    for f in (tmp_path / "out0").glob("*.tar*"):
        s3.upload_file(str(f), "models", f"exp1/shards/{f.name}")
    capsys.readouterr()
    assert cli.main([*SETTINGS, "shards", "--from-parts", str(tmp_path / "instance0" / "parts"), "--out",
                     str(tmp_path / "again"), "--skip-in", OUT, "--shard-mb", "0.3"], session=aws) == 0
    said = capsys.readouterr().out
    assert "(0 already finished)" not in said and not list((tmp_path / "again").glob("*.tar"))
