"""The review loop's IAM policy: exactly its actions, writes only to the labels and golden
prefixes, a bare wildcard only for list calls without resource-level permissions, and every
placeholder filled for a stack."""

from __future__ import annotations

import json

from orchestrate.core.config import load
from orchestrate.review.registry import POLICY, loop_policy

ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "sagemaker:CreateModelPackageGroup",
           "sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackage", "sagemaker:ListModelPackages",
           "sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage", "sagemaker:AddTags",
           "sagemaker:DescribeTrainingJob", "sagemaker:ListTags", "sagemaker:CreateModel",
           "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:CreateEndpointConfig",
           "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel", "sagemaker:UpdateEndpoint",
           "sagemaker:DescribeEndpoint", "sagemaker:ListTrainingJobs", "sagemaker:ListEndpoints", "iam:PassRole"}
NO_RESOURCE_LEVEL = {"sagemaker:ListTrainingJobs", "sagemaker:ListEndpoints"}


def _list(v) -> list:
    return v if isinstance(v, list) else [v]


def test_the_loop_policy_allows_exactly_its_actions_and_writes_only_labels_and_golden():
    doc = json.loads(POLICY.read_text())
    statements = doc["Statement"]
    assert {a for s in statements for a in _list(s["Action"])} == ACTIONS
    for s in statements:
        assert s["Effect"] == "Allow" and not {"NotAction", "NotResource"} & s.keys()
        if "*" in _list(s["Resource"]):
            assert set(_list(s["Action"])) <= NO_RESOURCE_LEVEL, s["Sid"]
        if "s3:PutObject" in _list(s["Action"]):
            assert _list(s["Resource"]) == ["arn:aws:s3:::{{Bucket}}/{{Prefix}}/{{LabelsPrefix}}/*",
                                            "arn:aws:s3:::{{Bucket}}/{{Prefix}}/{{GoldenPrefix}}/*"]


def test_the_loop_policy_is_filled_completely_for_a_stack():
    cfg = load(None, env={}, overrides=["aws.bucket=models", "aws.prefix=exp1", "aws.stack=t1",
                                        "aws.role_arn=arn:aws:iam::123456789012:role/sm"])
    text = json.dumps(loop_policy(cfg, "123456789012", "aft-vbi-pds"))
    assert "{{" not in text
    assert "arn:aws:s3:::models/exp1/labels/*" in text and "arn:aws:s3:::aft-vbi-pds/*" in text
    assert "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/t1-models" in text
