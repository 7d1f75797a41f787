"""The monitor schedule's two IAM policy templates are filled completely (what they grant is
proven by denial in tests/orchestrate/test_least_privilege.py and against the services' needs
in tests/test_iam_policies.py)."""

from __future__ import annotations

import json
import re

import pytest

from orchestrate.core.config import ConfigError, load
from orchestrate.core.iam import fill
from orchestrate.monitor import schedule


def test_filling_the_templates_leaves_no_placeholder_and_concrete_arns():
    cfg = load(None, env={}, overrides=["aws.bucket=models", "aws.prefix=exp1", "aws.stack=t1"])
    names = schedule.Names.of("t1")
    job, scheduler = schedule.policies(cfg, "123456789012", "s3://models/exp1/capture/ep/",
                                       "s3://models/m/model.tar.gz", "s3://models/exp1/monitor/reports/",
                                       "arn:aws:iam::123456789012:role/bincounter/t1-monitor-job-role", names,
                                       "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0")
    text = json.dumps([job, scheduler])
    assert "{{" not in text and "arn:aws:sagemaker:us-east-1:123456789012:processing-job/t1-monitor*" in text
    with pytest.raises(ConfigError, match="Nope"):
        fill('{"Resource": "{{Nope}}"}', {})
    assert set(re.findall(r"\{\{(\w+)\}\}", schedule.JOB_POLICY.read_text())) == {
        "CaptureBucket", "CapturePrefix", "ModelBucket", "ModelKey", "ReportBucket", "ReportPrefix", "Namespace",
        "Region", "AccountId", "ImageRepositoryArn", "StackBucket", "StackPrefix"}
    with pytest.raises(ConfigError, match="not an ECR image URI"):
        schedule.repository_arn("bincounter-training:latest")


@pytest.mark.parametrize("expression, seconds", [("rate(1 hour)", 3600), ("rate(6 hours)", 21600),
                                                 ("rate(1 day)", 86400), ("rate(30 minutes)", 1800)])
def test_the_alarms_period_is_the_time_between_runs(expression, seconds):
    assert schedule.alarm_period(expression) == seconds
    assert schedule.alarm_period("cron(0 8 * * ? *)", stated_hours=24) == 86400


@pytest.mark.parametrize("expression", ["rate(2 days)", "rate(1 minute)", "cron(0 8 * * ? *)", "at(2026-12-06T10:00:00)"])
def test_a_schedule_the_alarms_cannot_watch_is_refused(expression):
    with pytest.raises(ConfigError, match="--schedule"):
        schedule.alarm_period(expression)
