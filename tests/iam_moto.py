"""Least privilege by denial on moto: a principal holding exactly a policy runs a command with
moto's IAM enforcement on (its server's ``/moto-api/reset-auth``). moto evaluates S3 calls
against their bucket and key ARNs and every other service by its action only (it sees no
resource ARN there, and evaluates no condition but StringEquals on trust relationships):
``for_moto`` gives the principal the policy with those statements' resources widened to "*",
so what moto denies there is a missing action, and ``iam_helpers.denied`` judges the rest.
``sweep`` removes each statement in turn and says how the command then fails."""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager

import boto3

from iam_helpers import Request, as_list, denied, requests, without


# moto names an action by the request's signing name, which differs from IAM's prefix for these
_MOTO_PREFIX = {"cloudwatch": "monitoring"}


def for_moto(policy: dict) -> dict:
    """The policy as moto can enforce it: S3 statements as they are, every other statement's
    resources widened to "*" (moto judges those services by action alone), its actions under the
    name moto checks (``monitoring:PutMetricData`` for CloudWatch's)."""
    out = []
    for s in policy["Statement"]:
        actions = as_list(s["Action"])
        s3 = [a for a in actions if a.startswith("s3:")]
        other = [_MOTO_PREFIX.get(a.split(":")[0], a.split(":")[0]) + ":" + a.split(":", 1)[1]
                 for a in actions if not a.startswith("s3:")]
        if s3:
            out.append({**s, "Action": s3})
        if other:
            out.append({**{k: v for k, v in s.items() if k != "Condition"}, "Action": other, "Resource": "*"})
    return {"Version": policy["Version"], "Statement": out}


def principal(policy: dict, name: str) -> boto3.Session:
    """An IAM user in moto holding exactly ``policy`` (made while enforcement is off), as a session."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="exactly-this", PolicyDocument=json.dumps(for_moto(policy)))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name="us-east-1")


def _signed_as_sent(self):
    """moto's request for checking a signature, with the body as sent: moto 5.2.5 signs a GET's
    query parameters as its body (``data=self._body or self._data``), so every REST GET with a
    query (EventBridge Scheduler's GetSchedule) fails SignatureDoesNotMatch under enforcement."""
    from botocore.awsrequest import AWSRequest

    signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed, self._headers)
    body = self._body if self._method in ("GET", "HEAD", "DELETE") else (self._body or self._data)
    request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


@contextmanager
def enforced(moto_url: str):
    """moto authenticates and authorizes every request inside the block (then no more)."""
    from moto.iam.access_control import IAMRequestBase
    def reset(count: str) -> None:
        # a body without a form content type: the server reads it as the count itself
        urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=count.encode(),
                                                      headers={"Content-Type": "text/plain"},
                                                      method="POST")).close()
    original = IAMRequestBase._create_aws_request
    IAMRequestBase._create_aws_request = _signed_as_sent  # the server runs in this process
    reset("0")
    try:
        yield
    finally:
        reset("inf")
        IAMRequestBase._create_aws_request = original


def access_denied(exc: BaseException | str) -> bool:
    """An error (or a command's stderr) that is AWS saying no."""
    text = str(exc)
    return any(code in text for code in ("AccessDenied", "AccessDeniedException", "not authorized to perform"))


def sweep(policy: dict, scenario, needs: list[Request] = ()) -> dict[str, str]:
    """For each statement of ``policy``: how the policy without it fails, "" when nothing does (a
    statement nobody needs). ``scenario(policy)`` runs the command as a principal holding that
    policy and returns (succeeded, recorded calls, its error text); ``needs``: what the service
    does with the role (docs/platform.md §11)."""
    found = {}
    for i, statement in enumerate(policy["Statement"]):
        less = without(policy, i)
        unmet = denied(less, list(needs))
        if unmet:
            found[statement["Sid"]] = f"the service is denied {unmet[0]}"
            continue
        ok, calls, error = scenario(less)
        bad = denied(less, requests(calls))
        said = next((line for line in error.splitlines() if access_denied(line)), "")
        found[statement["Sid"]] = (f"moto answers AccessDenied: {said.strip()[:160]}"
                                   if not ok and access_denied(error) else
                                   f"the evaluator denies {bad[0]}" if bad else "")
    return found


def print_sweep(name: str, found: dict[str, str]) -> None:
    """The proof, one line a statement (``pytest -s`` shows it)."""
    print(f"\n{name}: each statement removed ->")
    for sid, why in found.items():
        print(f"  {sid}: {why or 'NOTHING FAILS'}")
