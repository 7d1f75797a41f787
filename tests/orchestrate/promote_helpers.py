"""A stack's registry on moto for the promote tests: trained jobs whose artifact holds a card,
and golden scores made from hand-made answers by the real scoring."""

from __future__ import annotations

import io
import json
import tarfile

import boto3

from aws_helpers import ROLE_ARN
from bincounter.modelcard import ModelCard
from bincounter.preprocess import PreprocessSpec
from bincounter.verification import Thresholds, VerdictRule
from orchestrate.audit.join import Row
from orchestrate.core.aws import tags, unique_name
from orchestrate.review.scoring import score

SERVE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-serving:1.0"
TRAIN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
CLASSES = [1, 2, 3, 4, 5]
PER_COUNT = 12
TRUTH = {f"{c}-{i}": c for c in CLASSES for i in range(PER_COUNT)}
# per-count conformal thresholds at 10 %: each side needs 9 asks, which 12 bins a count give
CARD = ModelCard(classes=CLASSES, preprocess=PreprocessSpec(64), arch="resnet18",
                 verification=VerdictRule(Thresholds(None, None), tuple((c, Thresholds(0.9, 0.05)) for c in CLASSES)),
                 operating_point={"targets": {"max_false_match": 0.1, "max_false_mismatch": 0.1},
                                  "guarantee": "conformal", "confidence": 0.95})


def trained(aws, card: ModelCard) -> str:
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
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=open_card_tar(card))
    return artifact


def answers_right_on(n_right: int):
    """A model's golden score: sure and right on the first ``n_right`` bins, sure of one too many
    on the others (so its matches there are false)."""
    rows = []
    for i, (bin_id, true) in enumerate(TRUTH.items()):
        counted = true if i < n_right else true % 5 + 1
        rest = 0.04 / 4
        rows.append(Row(bin_id, counted=counted, probabilities={str(c): 0.96 if c == counted else rest
                                                                for c in CLASSES}))
    return score(rows, TRUTH, CARD)


def open_card_tar(card: ModelCard) -> bytes:
    body = json.dumps(card.to_dict()).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()
