"""The test stack every shipped policy is filled for, and the table of what the services do
with each role, read from docs/platform.md §11 (the docs are this table's one owner)."""

from __future__ import annotations

import re
from pathlib import Path

from iam_helpers import ACCOUNT, Request


# The test stack every policy is filled for (and the values the docs' table of service needs
# names in braces)
STACK_VALUES = {"Region": "us-east-1", "Account": ACCOUNT, "Bucket": "models", "Prefix": "exp1", "Stack": "t1",
                "Endpoint": "t1-ep", "Function": "t1-verify", "TrainingRepository": "bincounter-training",
                "ServingRepository": "bincounter-serving", "SourceBucket": "aft-vbi-pds", "Job": "t1-job-1",
                "Stream": "2026-12-06-abc"}
TRAIN_IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
MONITORED_MODEL = "s3://models/exp1/output/t1-train-1/output/model.tar.gz"


def stack_config():
    from aws_helpers import ROLE_ARN
    from orchestrate.core.config import load

    return load(None, env={}, overrides=[
        "aws.bucket=models", "aws.prefix=exp1", "aws.stack=t1", f"aws.role_arn={ROLE_ARN}",
        "deploy.endpoint_name=t1-ep", "lambda.function_name=t1-verify"])


def stack_policies() -> dict[str, dict]:
    """Every policy the project ships, filled for the test stack, by role name (as the docs name
    the roles): what orchestrate itself would attach, and what `orchestrate policy` prints."""
    from orchestrate.access import policies
    from orchestrate.endpoint.lambda_fn import role_policy
    from orchestrate.monitor import schedule

    cfg = stack_config()
    names = schedule.Names.of("t1")
    job, scheduler = schedule.policies(
        cfg, ACCOUNT, "s3://models/exp1/capture/t1-ep/", MONITORED_MODEL, "s3://models/exp1/monitor/reports/",
        f"arn:aws:iam::{ACCOUNT}:role/bincounter/{names.job_role}", names, TRAIN_IMAGE)
    lambda_template = (Path(__file__).resolve().parents[1] / "lambda" / "iam-policy.json").read_text()
    return {"monitor job": job, "monitor scheduler": scheduler,
            "Lambda": role_policy(lambda_template, region="us-east-1", account=ACCOUNT, endpoint="t1-ep",
                                  function="t1-verify", s3_prefix="s3://bins-in/incoming/"),
            **{name: policies.filled(name, cfg, ACCOUNT) for name in ("execution", "labelling", "release")}}


PLATFORM_DOC = Path(__file__).resolve().parents[1] / "docs" / "platform.md"


def service_needs() -> dict[str, list[Request]]:
    """The table's rows by role, braces filled for the test stack."""
    text = PLATFORM_DOC.read_text().split("## 11.", 1)[1]
    needs: dict[str, list[Request]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("role", "---") or not re.fullmatch(r"[a-z0-9]+:\w+", cells[2]):
            continue
        role, doing, action, resource, condition, _ = cells
        fill = lambda s: re.sub(r"\{(\w+)\}", lambda m: STACK_VALUES[m.group(1)], s)
        context = dict([fill(condition).split("=", 1)]) if condition else {}
        needs.setdefault(role, []).append(Request(doing, action, fill(resource), context))
    return needs
