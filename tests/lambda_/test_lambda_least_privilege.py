"""The Lambda's role, least privilege by denial: the handler, run with the credentials of an IAM
user holding exactly the role's policy (S3 input on), against moto with its IAM enforcement on:
it reads the photo from its one prefix and calls its one endpoint; removing any statement makes
the handler's calls fail with AccessDenied, or leaves what Lambda itself does with the role (its
log) unmet (docs/platform.md §11)."""

from __future__ import annotations

import boto3
import pytest

from aws_helpers import record
from iam_helpers import denied, requests, shape
from iam_moto import enforced, principal, print_sweep, sweep
from iam_stack import service_needs, stack_policies
from lambda_helpers import handler

pytestmark = pytest.mark.slow  # a moto server

POLICY = stack_policies()["Lambda"]   # S3 input under s3://bins-in/incoming/, endpoint t1-ep
_users = iter(range(1000))


@pytest.fixture
def function_env(aws, moto_server, monkeypatch, bin_jpegs):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bins-in")
    s3.put_object(Bucket="bins-in", Key="incoming/bin-7.jpg", Body=bin_jpegs[3])
    monkeypatch.setenv("ENDPOINT_NAME", "t1-ep")
    monkeypatch.setenv("S3_ALLOWED_PREFIX", "s3://bins-in/incoming/")
    monkeypatch.setenv("MAX_ATTEMPTS", "1")

    def scenario(policy: dict) -> tuple[bool, list, str]:
        user = principal(policy, f"function-{next(_users)}")
        creds = user.get_credentials()
        # the handler makes its clients from boto3's default session, as in Lambda: that session
        # holds the principal's keys (Lambda gives the role's) and records what it sends
        sess = record(boto3.Session(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                                    region_name="us-east-1"))
        errors: list[str] = []
        sess.events.register("after-call.*.*", lambda parsed, **_: errors.append(
            (parsed or {}).get("Error", {}).get("Code", "")))
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", sess)
        handler._clients.clear()
        with enforced(moto_server):
            reply = handler.lambda_handler({"s3_uri": "s3://bins-in/incoming/bin-7.jpg", "expected_quantity": 3},
                                           None)
        said = " ".join(e for e in errors if e) + f" -> HTTP {reply['statusCode']} {reply['body'][:200]}"
        return not any("AccessDenied" in e for e in errors), sess.api_calls, said
    return scenario


def test_the_handler_runs_with_exactly_its_roles_policy_and_needs_every_statement(function_env):
    ok, calls, said = function_env(POLICY)
    assert ok, said
    assert [f"{s}:{o}" for s, o, _ in calls] == ["s3:GetObject", "sagemaker-runtime:InvokeEndpoint"]
    assert [str(r) for r in denied(POLICY, requests(calls))] == []
    assert shape(requests(calls)) == []  # each ARN of a type AWS says its action takes
    found = sweep(POLICY, function_env, service_needs()["Lambda"])
    print_sweep("Lambda", found)
    assert all(found.values()), found


def test_the_handler_may_read_no_photo_outside_its_prefix_nor_call_another_endpoint(function_env):
    calls = [("s3", "GetObject", {"Bucket": "bins-in", "Key": "elsewhere/x.jpg"}),
             ("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "another-ep"})]
    assert [r.action for r in denied(POLICY, requests(calls))] == ["s3:GetObject", "sagemaker:InvokeEndpoint"]
