"""`orchestrate promote` on moto's SageMaker: every trained job becomes a pending model package;
the first is approved when its verdicts keep their targets on the golden set, a worse
candidate is refused with the table, `--force` approves it and says so, a better one wins.

The golden scores come from the score cache promote keeps (by golden hash and model), filled
here from hand-made answers: this file tests the registry and the decision; the answers
themselves come from the audit's transform (tests/orchestrate/test_review_promote_rules.py
for the arithmetic)."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest

from aws_helpers import ROLE_ARN
from bincounter.modelcard import ModelCard
from bincounter.reviews import HumanLabel, digest, write_labels
from orchestrate import cli
from orchestrate.audit.join import Row
from orchestrate.core.aws import tags, unique_name
from orchestrate.review.golden_audit import ScoreCache, cache_key
from orchestrate.review.scoring import score

pytestmark = pytest.mark.slow  # a moto server

SERVE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-serving:1.0"
TRAIN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
SETTINGS = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "--set", "aws.stack=t1", "--set", f"images.serving_image={SERVE_IMAGE}",
            "--set", f"images.training_image={TRAIN_IMAGE}"]
N = 40


def trained(aws, make_cfg, card: ModelCard) -> str:
    """A completed training job of the stack in moto (tagged as orchestrate tags it), its
    model.tar.gz holding ``card``; returns the artifact's URI."""
    sm = aws.client("sagemaker")
    name = unique_name("t1", "train")
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE_ARN, Tags=tags("t1"),
        AlgorithmSpecification={"TrainingImage": TRAIN_IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://models/exp1/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    artifact = sm.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    body = json.dumps(card.to_dict()).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    return artifact


def answers_right_on(right: set[int]):
    """A model's golden score: it counts the bins in ``right`` right, the others one too many."""
    truth = {f"{i:05d}": 2 for i in range(N)}
    return score([Row(f"{i:05d}", expected=2, counted=2 if i in right else 3, verdict="review") for i in range(N)],
                 truth)


@pytest.fixture
def stack(aws, make_cfg, random_model_dir, tmp_path):
    boto3.client("s3").create_bucket(Bucket="models")
    golden = write_labels(tmp_path / "golden.manifest", [HumanLabel(f"s3://photos/images/{i:05d}.jpg", "2",
                                                                    expected_quantity=2) for i in range(N)])
    card = ModelCard.read(random_model_dir)
    card = ModelCard.from_dict({**card.to_dict(), "operating_point": {"targets": {"max_false_match": 0.01,
                                                                                  "max_false_mismatch": 0.05}}})
    cache = ScoreCache(str(tmp_path / "scores"))
    return golden, card, cache


def promote(aws, golden, cache, *args: str) -> int:
    return cli.main([*SETTINGS, "promote", "--golden", str(golden), "--scores", cache.where, *args], session=aws)


def packages(aws) -> list[dict]:
    sm = aws.client("sagemaker")
    summaries = sm.list_model_packages(ModelPackageGroupName="t1-models", SortBy="CreationTime",
                                       SortOrder="Ascending")["ModelPackageSummaryList"]
    return [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in summaries]


def test_promote_approves_the_first_refuses_a_worse_records_force_and_approves_a_better(
        aws, make_cfg, stack, capsys):
    golden, card, cache = stack
    sha = digest(golden)
    first = trained(aws, make_cfg, card)
    cache.put(cache_key(sha, first), answers_right_on(set(range(20))))
    assert promote(aws, golden, cache) == 0
    out = capsys.readouterr().out
    assert "approved: first model: its verdicts keep their targets on the 40 golden bins" in out
    [p1] = packages(aws)
    assert p1["ModelApprovalStatus"] == "Approved"
    assert p1["InferenceSpecification"]["Containers"][0] == {"Image": SERVE_IMAGE, "ModelDataUrl": first} | {
        k: v for k, v in p1["InferenceSpecification"]["Containers"][0].items() if k not in ("Image", "ModelDataUrl")}
    assert p1["CustomerMetadataProperties"]["arch"] == card.arch

    worse = trained(aws, make_cfg, card)
    cache.put(cache_key(sha, worse), answers_right_on(set(range(12))))
    assert promote(aws, golden, cache) == 3
    out = capsys.readouterr().out
    assert "refused: not better: on the same 40 golden bins the candidate alone counts 0 right, the approved " \
           "model alone 8" in out
    assert "| accuracy | 30.0% | 50.0% |" in out  # the table, candidate beside approved
    assert "scored on this golden set before" in out
    assert [p["ModelApprovalStatus"] for p in packages(aws)] == ["Approved", "PendingManualApproval"]

    assert promote(aws, golden, cache, "--force") == 0
    forced = packages(aws)[1]
    assert forced["ModelApprovalStatus"] == "Approved"
    assert forced["ApprovalDescription"].startswith("forced by promote --force; not better:")

    better = trained(aws, make_cfg, card)
    cache.put(cache_key(sha, better), answers_right_on(set(range(30))))  # 18 more right than the forced one
    assert promote(aws, golden, cache) == 0
    assert "approved: wins: on the same 40 golden bins the candidate alone counts 18 right" in capsys.readouterr().out
    assert [p["ModelApprovalStatus"] for p in packages(aws)] == ["Approved"] * 3
    assert [p["CustomerMetadataProperties"]["training_job"] for p in packages(aws)] == [
        a.split("/")[-3] for a in (first, worse, better)]
    # no endpoint in this stack: nothing was deployed
    assert not [c for c in aws.api_calls if c[1] == "CreateEndpointConfig"]


def test_promote_without_a_golden_set_says_how_to_make_one(aws, make_cfg, stack, capsys):
    _, card, _ = stack
    trained(aws, make_cfg, card)
    assert cli.main([*SETTINGS, "promote"], session=aws) == 1
    assert "no golden set: make one with `orchestrate golden --from ...`" in capsys.readouterr().err
