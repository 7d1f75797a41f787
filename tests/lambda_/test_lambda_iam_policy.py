"""lambda/iam-policy.json: its shape (one endpoint, its own logs, one prefix) and a template
orchestrate can fill in. What it grants is proven by denial in test_lambda_least_privilege.py."""

from __future__ import annotations

import json
import re

import pytest
from lambda_helpers import LAMBDA_DIR

POLICY = LAMBDA_DIR / "iam-policy.json"
VALUES = {"Region": "eu-west-1", "AccountId": "123456789012", "EndpointNameLower": "bincounter-prod",
          "FunctionName": "bincounter-front-door", "S3Bucket": "bins-in", "S3Prefix": "incoming/"}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture
def policy() -> dict:
    return json.loads(POLICY.read_text())


def test_policy_is_valid_json_with_only_allow_statements(policy):
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & statement.keys()


def test_invoke_endpoint_is_on_one_endpoint_arn_never_a_wildcard(policy):
    [statement] = [s for s in policy["Statement"] if "sagemaker:InvokeEndpoint" in _as_list(s["Action"])]
    assert _as_list(statement["Action"]) == ["sagemaker:InvokeEndpoint"]
    [resource] = _as_list(statement["Resource"])
    assert "*" not in resource
    assert resource == "arn:aws:sagemaker:{{Region}}:{{AccountId}}:endpoint/{{EndpointNameLower}}"


def test_logs_and_s3_stay_within_their_own_log_group_and_prefix(policy):
    for statement in policy["Statement"]:
        for resource in _as_list(statement["Resource"]):
            assert resource != "*"
            if resource.startswith("arn:aws:logs:"):
                assert ":log-group:/aws/lambda/{{FunctionName}}" in resource
            if resource.startswith("arn:aws:s3:"):
                assert resource == "arn:aws:s3:::{{S3Bucket}}/{{S3Prefix}}*"


def test_every_placeholder_is_documented_and_filling_them_gives_concrete_arns():
    text = POLICY.read_text()
    placeholders = set(re.findall(r"\{\{(\w+)\}\}", text))
    assert placeholders == set(VALUES)
    readme = (LAMBDA_DIR / "README.md").read_text()
    assert all(f"{{{{{name}}}}}" in readme for name in placeholders)
    for name, value in VALUES.items():
        text = text.replace(f"{{{{{name}}}}}", value)
    filled = json.loads(text)
    resources = [r for s in filled["Statement"] for r in _as_list(s["Resource"])]
    assert "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/bincounter-prod" in resources
    assert "arn:aws:s3:::bins-in/incoming/*" in resources
    assert not any("{" in r or "$" in r for r in resources)
