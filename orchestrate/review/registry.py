"""The stack's SageMaker Model Registry group: every trained model becomes a model package
(the serving image, the artifact, the card's metrics and operating point as metadata),
``PendingManualApproval`` until ``promote`` decides. Takes a boto3 ``sagemaker`` client."""

from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from bincounter.modelcard import ModelCard
from orchestrate.audit.run_cloud import read_card
from orchestrate.core.aws import is_ours, tags
from orchestrate.core.config import Config

log = logging.getLogger(__name__)
PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
CONTENT_TYPES = ["image/jpeg", "image/png", "application/json", "application/jsonlines"]


def group_name(cfg: Config) -> str:
    return f"{cfg.aws.stack}-models"


def ensure_group(sm, cfg: Config) -> str:
    name = group_name(cfg)
    try:
        sm.describe_model_package_group(ModelPackageGroupName=name)
    except ClientError:
        sm.create_model_package_group(ModelPackageGroupName=name, Tags=tags(cfg.aws.stack),
                                      ModelPackageGroupDescription=f"bincounter models of stack {cfg.aws.stack}")
    return name


def card_metadata(card: ModelCard, job: str) -> dict[str, str]:
    """What a package says about its model (CustomerMetadataProperties: strings)."""
    test = card.metrics.get("test", {})
    op = card.operating_point
    found = {"training_job": job, "arch": card.arch, "graph": card.onnx_file,
             "test_accuracy": f"{test.get('accuracy', float('nan')):.4f}",
             "test_rmse": f"{test.get('rmse', float('nan')):.4f}", "test_n": str(test.get("n", 0)),
             "targets": json.dumps(op.get("targets", {}), sort_keys=True), "guarantee": str(op.get("guarantee", "")),
             "golden_sha256": card.training.get("labels", {}).get("golden_sha256", "")}
    return {k: v for k, v in found.items() if v}  # the API refuses empty values


def packages(sm, cfg: Config, status: str | None = None) -> list[dict]:
    """The group's packages, newest first (summaries), optionally of one approval status."""
    kw = {"ModelApprovalStatus": status} if status else {}
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group_name(cfg), SortBy="CreationTime", SortOrder="Descending", **kw)
    return [p for page in pages for p in page["ModelPackageSummaryList"]]


def registered_jobs(sm, cfg: Config) -> dict[str, str]:
    """{training job: package ARN} of the group: one pass over its packages ({} before it exists)."""
    try:
        found = packages(sm, cfg)
    except ClientError:
        return {}
    jobs = {}
    for p in found:
        meta = sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]).get("CustomerMetadataProperties", {})
        jobs.setdefault(meta.get("training_job", ""), p["ModelPackageArn"])
    return jobs


def register(sm, s3, cfg: Config, job: str, image: str, known: dict[str, str] | None = None) -> str:
    """One completed training job -> a pending model package (once: a job already registered
    returns its package). ``known``: ``registered_jobs``, when the caller has it already."""
    known = registered_jobs(sm, cfg) if known is None else known
    if job in known:
        return known[job]
    group = ensure_group(sm, cfg)
    artifact = sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
    card = read_card(s3, artifact)
    arn = sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=PENDING,
        ModelPackageDescription=f"training job {job}",
        InferenceSpecification={"Containers": [{"Image": image, "ModelDataUrl": artifact}],
                                "SupportedContentTypes": CONTENT_TYPES,
                                "SupportedResponseMIMETypes": ["application/json"]},
        CustomerMetadataProperties=card_metadata(card, job))["ModelPackageArn"]
    log.info("registered %s as %s", job, arn)
    known[job] = arn
    return arn


def register_new(sm, s3, cfg: Config, image: str) -> list[str]:
    """Every completed training job of the stack that is not a package yet (the group's
    packages are read once, not once per job)."""
    known = registered_jobs(sm, cfg)
    made = []
    pages = sm.get_paginator("list_training_jobs").paginate(StatusEquals="Completed", NameContains=cfg.aws.stack,
                                                            SortBy="CreationTime", SortOrder="Ascending")
    for page in pages:
        for summary in page["TrainingJobSummaries"]:
            name = summary["TrainingJobName"]
            if name in known:
                continue
            arn = sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
            if is_ours(sm.list_tags(ResourceArn=arn).get("Tags", []), cfg.aws.stack):
                made.append(register(sm, s3, cfg, name, image, known))
    return made


def model_data(sm, arn: str) -> str:
    return sm.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def decide(sm, arn: str, status: str, description: str, golden: dict[str, str]) -> None:
    """Set the approval, and record the golden score it rests on in the package's metadata (the
    metadata is sent whole: moto's UpdateModelPackage drops what is not sent, the API keeps it)."""
    kept = sm.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties", {})
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description[:1024],
                            CustomerMetadataProperties={**kept, **{k: v for k, v in golden.items() if v}})
