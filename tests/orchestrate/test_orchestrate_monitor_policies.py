"""The monitor schedule's two IAM policy templates: least privilege, and filled completely."""

from __future__ import annotations

import json
import re

import pytest

from orchestrate.core.config import ConfigError, load
from orchestrate.core.iam import fill
from orchestrate.monitor import schedule

GRANTS = {schedule.JOB_POLICY: {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "cloudwatch:PutMetricData",
                                "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
          schedule.SCHEDULER_POLICY: {"sagemaker:CreateProcessingJob", "sagemaker:AddTags", "iam:PassRole"}}


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", list(GRANTS), ids=lambda p: p.name)
def test_each_policy_allows_exactly_its_actions_and_no_wildcard_resource_without_a_condition(path):
    doc = json.loads(path.read_text())
    assert doc["Version"] == "2012-10-17"
    assert {a for s in doc["Statement"] for a in _list(s["Action"])} == GRANTS[path]
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow" and not {"NotAction", "NotResource"} & s.keys()
        for resource in _list(s["Resource"]):
            # PutMetricData has no resource-level permission: its namespace condition bounds it
            assert resource != "*" or s.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace")


def test_filling_the_templates_leaves_no_placeholder_and_concrete_arns():
    cfg = load(None, env={}, overrides=["aws.bucket=models", "aws.prefix=exp1", "aws.stack=t1"])
    names = schedule.Names.of("t1")
    job, scheduler = schedule.policies(cfg, "123456789012", "s3://models/exp1/capture/ep/",
                                       "s3://models/m/model.tar.gz", "s3://models/exp1/monitor/reports/",
                                       "arn:aws:iam::123456789012:role/bincounter/t1-monitor-job-role", names)
    text = json.dumps([job, scheduler])
    assert "{{" not in text and "arn:aws:sagemaker:us-east-1:123456789012:processing-job/t1-monitor*" in text
    with pytest.raises(ConfigError, match="Nope"):
        fill('{"Resource": "{{Nope}}"}', {})
    assert set(re.findall(r"\{\{(\w+)\}\}", schedule.JOB_POLICY.read_text())) == {
        "CaptureBucket", "CapturePrefix", "ModelBucket", "ModelKey", "ReportBucket", "ReportPrefix", "Namespace",
        "Region", "AccountId"}
