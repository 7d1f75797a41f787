"""The policies orchestrate does not attach itself but ships, each filled for a stack:

- ``execution``: the SageMaker execution role of ``[aws] role_arn``, which training, tuning,
  Batch Transform and the endpoint run as: the stack's S3 prefix and the public bucket, pulls
  of our two ECR repositories, SageMaker's logs and metrics. Nothing else, so a first run on a
  real account needs no ``AmazonSageMakerFullAccess``.
- ``labelling``: whoever runs ``review export`` / ``review import``: read audits' recount lists,
  write people's counts. No production rights.
- ``release``: whoever runs ``golden``, ``promote`` and ``deploy``: the registry group, scoring on
  the golden set, the endpoint update, and keeping the monitor's schedule on the served model.

The roles orchestrate makes itself (the Lambda's, the monitor's job and scheduler) hold the
policy files beside the code that makes them.
"""

from __future__ import annotations

from pathlib import Path

from orchestrate.core.config import Config
from orchestrate.core.iam import fill
from orchestrate.monitor.schedule import Names

HERE = Path(__file__).resolve().parent
TEMPLATES = {"execution": HERE / "execution-policy.json",
             "labelling": HERE.parent / "review" / "labelling-policy.json",
             "release": HERE.parent / "review" / "release-policy.json"}


def values(cfg: Config, account: str) -> dict[str, str]:
    """Every placeholder of the templates, for this stack."""
    names = Names.of(cfg.aws.stack)
    return {"Region": cfg.aws.region, "AccountId": account, "Stack": cfg.aws.stack,
            "Bucket": cfg.require("aws", "bucket"), "Prefix": cfg.aws.prefix.strip("/"),
            "SourceBucket": cfg.data.source_bucket,
            "EndpointName": cfg.deploy.endpoint_name, "LabelsPrefix": cfg.review.labels_prefix.strip("/"),
            "GoldenPrefix": cfg.review.golden_prefix.strip("/"), "RoleArn": cfg.require("aws", "role_arn"),
            "TrainingRepository": cfg.images.training_repo, "ServingRepository": cfg.images.serving_repo,
            "ScheduleGroup": names.group, "Schedule": names.schedule, "SchedulerRole": names.scheduler_role}


def filled(name: str, cfg: Config, account: str) -> dict:
    """The policy ``name`` (one of ``TEMPLATES``) filled for the stack."""
    return fill(TEMPLATES[name].read_text(), values(cfg, account))
