"""``orchestrate lambda``: the front-door function, its least-privilege role, an optional URL.

The role's only policy is ``lambda/iam-policy.json`` (owned by the Lambda
issue) with its ``{{Placeholder}}`` names filled in; the optional S3 statement
is dropped unless ``lambda.s3_input_prefix`` is set.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from orchestrate.core import iam as iam_roles
from orchestrate.core.aws import tags
from orchestrate.core.iam import fill
from orchestrate.core.config import Config, ConfigError

log = logging.getLogger(__name__)

S3_STATEMENT = "OptionalReadImagesUnderOnePrefix"
POLICY_NAME = "bincounter-lambda-least-privilege"


@dataclass(frozen=True)
class FunctionResult:
    name: str
    arn: str
    role_arn: str
    created: bool
    url: str | None


def role_policy(template: str, *, region: str, account: str, endpoint: str, function: str,
                s3_prefix: str = "") -> dict:
    """The policy template with every placeholder filled; fails naming any left unknown."""
    doc = json.loads(template)
    values = {"Region": region, "AccountId": account, "EndpointNameLower": endpoint.lower(),
              "FunctionName": function}
    if s3_prefix:
        m = re.fullmatch(r"s3://([^/]+)/(.*)", s3_prefix)
        if not m:
            raise ConfigError(f"lambda.s3_input_prefix must look like s3://bucket/prefix/, got {s3_prefix!r}")
        values.update(S3Bucket=m.group(1), S3Prefix=m.group(2))
    else:
        doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != S3_STATEMENT]
    return fill(json.dumps(doc), values)


def build_zip(source_dir: str | Path) -> bytes:
    """The handler's .py files (not tests) at the zip's top level."""
    files = sorted(p for p in Path(source_dir).glob("*.py") if not p.name.startswith("test_"))
    if not files:
        raise ConfigError(f"no .py files in {source_dir} to package for Lambda")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
    return buf.getvalue()


def ensure_role(iam, cfg: Config, account: str, policy: dict) -> str:
    """Create (or refresh the trust and policy of) the function's role; returns its ARN. Lambda
    assumes it for this account only (it sets aws:SourceAccount, not a documented SourceArn)."""
    return iam_roles.ensure_role(iam, f"{cfg.function.function_name}-role"[:64],
                                 iam_roles.trust("lambda.amazonaws.com", account), POLICY_NAME, policy,
                                 cfg.aws.stack, "bincounter Lambda: invoke one endpoint, write own logs")


def deploy_function(lam, iam, cfg: Config, account: str, endpoint: str) -> FunctionResult:
    f = cfg.function
    template = Path(f.policy_file).read_text(encoding="utf-8")
    policy = role_policy(template, region=cfg.aws.region, account=account, endpoint=endpoint,
                         function=f.function_name, s3_prefix=f.s3_input_prefix)
    role_arn = ensure_role(iam, cfg, account, policy)
    code = Path(f.zip_file).read_bytes() if f.zip_file else build_zip(f.source_dir)
    env = {"ENDPOINT_NAME": endpoint}
    if f.s3_input_prefix:
        env["S3_ALLOWED_PREFIX"] = f.s3_input_prefix
    settings = dict(Role=role_arn, Handler=f.handler, Runtime=f.runtime, Timeout=f.timeout,
                    MemorySize=f.memory_mb, Environment={"Variables": env})
    try:
        arn = lam.get_function(FunctionName=f.function_name)["Configuration"]["FunctionArn"]
        created = False
    except lam.exceptions.ResourceNotFoundException:
        arn, created = None, True
    if created:
        try:
            arn = lam.create_function(FunctionName=f.function_name, Code={"ZipFile": code},
                                      Tags={t["Key"]: t["Value"] for t in tags(cfg.aws.stack)},
                                      **settings)["FunctionArn"]
        except ClientError as exc:
            if "cannot be assumed" in str(exc):
                # IAM is eventually consistent: a brand-new role takes seconds to reach Lambda.
                raise RuntimeError(f"Lambda cannot assume the new role {role_arn} yet; "
                                   "run the same command again in a few seconds") from exc
            raise
        lam.get_waiter("function_active_v2").wait(FunctionName=f.function_name)
    else:
        lam.update_function_code(FunctionName=f.function_name, ZipFile=code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=f.function_name)
        lam.update_function_configuration(FunctionName=f.function_name, **settings)
        lam.get_waiter("function_updated_v2").wait(FunctionName=f.function_name)
        lam.tag_resource(Resource=arn, Tags={t["Key"]: t["Value"] for t in tags(cfg.aws.stack)})
    log.info("%s function %s (endpoint %s)", "created" if created else "updated", f.function_name, endpoint)
    url = function_url(lam, f.function_name, f.function_url_auth) if f.function_url_auth else None
    return FunctionResult(f.function_name, arn, role_arn, created, url)


# the resource-policy statements that make a URL public: they exist exactly when its auth is NONE
PUBLIC_URL_STATEMENTS = {
    "public-function-url": dict(Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE"),
    # URLs created since October 2025 need InvokeFunction too, granted here only through the URL
    "public-function-url-invoke": dict(Action="lambda:InvokeFunction", Principal="*", InvokedViaFunctionUrl=True),
}


def function_url(lam, name: str, auth: str) -> str:
    """The function's URL with ``auth``; its public permissions follow: added for NONE, removed for
    AWS_IAM (an AWS_IAM URL left with a public statement would still let anyone call it)."""
    if auth not in ("AWS_IAM", "NONE"):
        raise ConfigError(f"lambda.function_url_auth must be AWS_IAM, NONE or empty, got {auth!r}")
    try:
        url = lam.get_function_url_config(FunctionName=name)["FunctionUrl"]
        lam.update_function_url_config(FunctionName=name, AuthType=auth)
    except lam.exceptions.ResourceNotFoundException:
        url = lam.create_function_url_config(FunctionName=name, AuthType=auth)["FunctionUrl"]
    there = resource_statements(lam, name)
    for sid, grant in PUBLIC_URL_STATEMENTS.items():
        if auth == "NONE" and sid not in there:
            lam.add_permission(FunctionName=name, StatementId=sid, **grant)
        elif auth != "NONE" and sid in there:
            lam.remove_permission(FunctionName=name, StatementId=sid)
            log.info("removed the public permission %s of %s (its URL is now AWS_IAM)", sid, name)
    return url


def resource_statements(lam, name: str) -> set[str]:
    """The Sids of the function's resource policy (none yet: an empty set)."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return set()
    return {s.get("Sid", "") for s in policy.get("Statement", [])}
