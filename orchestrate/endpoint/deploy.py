"""``orchestrate deploy`` / ``invoke``: a real-time endpoint from the serving image.

boto3, not v3's ``ModelBuilder.deploy``: ModelBuilder builds and validates
a model locally first (it wants to know the framework) and, after deploying,
reads the endpoint back through pydantic shapes; for a bring-your-own
image plus a ready ``model.tar.gz``, the three create calls are the whole
job, and they are what the test emulator (moto) answers correctly
(docs/platform.md §4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from bincounter.monitoring.capture import JSON_CONTENT_TYPES
from orchestrate.core.aws import Poll, is_ours, tags, unique_name
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.served import capture_uri, endpoint_exists

log = logging.getLogger(__name__)

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    endpoint_config: str
    model: str
    model_data: str
    status: str
    capture: str = "off"  # where data capture writes, or "off"


def latest_model_data(sm, stack: str) -> tuple[str, str]:
    """(training job, model.tar.gz URI) of the newest completed training job orchestrate made."""
    pages = sm.get_paginator("list_training_jobs").paginate(
        StatusEquals="Completed", SortBy="CreationTime", SortOrder="Descending", NameContains=stack)
    for page in pages:
        for summary in page["TrainingJobSummaries"]:
            job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            if is_ours(sm.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", []), stack):
                return job["TrainingJobName"], job["ModelArtifacts"]["S3ModelArtifacts"]
    raise LookupError(f"no completed training job of stack {stack!r} found; "
                      "run `orchestrate train` or pass --model-data s3://.../model.tar.gz")


def deploy(sm, autoscaling, cfg: Config, image: str, model_data: str,
           echo: Callable[[str], None] = lambda s: None, poll_delay: float = 15.0) -> Deployment:
    """Model + endpoint config + endpoint (created, or updated in place); waits for InService."""
    d = cfg.deploy
    capture = data_capture(cfg)  # before anything is created: it needs the stack's bucket
    model = unique_name(cfg.aws.stack, "model")
    endpoint_config = unique_name(d.endpoint_name, "config")
    sm.create_model(ModelName=model, ExecutionRoleArn=cfg.require("aws", "role_arn"),
                    PrimaryContainer={"Image": image, "ModelDataUrl": model_data},
                    Tags=tags(cfg.aws.stack))
    sm.create_endpoint_config(
        EndpointConfigName=endpoint_config, Tags=tags(cfg.aws.stack),
        ProductionVariants=[{"VariantName": VARIANT, "ModelName": model, "InitialInstanceCount": d.instance_count,
                             "InstanceType": d.instance_type, "InitialVariantWeight": 1.0}],
        **({"DataCaptureConfig": capture} if capture else {}))
    if endpoint_exists(sm, d.endpoint_name):
        sm.update_endpoint(EndpointName=d.endpoint_name, EndpointConfigName=endpoint_config)
        log.info("endpoint %s: updating to %s", d.endpoint_name, endpoint_config)
    else:
        sm.create_endpoint(EndpointName=d.endpoint_name, EndpointConfigName=endpoint_config,
                           Tags=tags(cfg.aws.stack))
        log.info("endpoint %s: creating with %s", d.endpoint_name, endpoint_config)
    status = Poll(lambda: sm.describe_endpoint(EndpointName=d.endpoint_name)["EndpointStatus"],
                  done={"InService"}, failed={"Failed", "OutOfService"}, what=f"endpoint {d.endpoint_name}",
                  timeout=d.wait_seconds, delay=poll_delay).run(echo)
    if status != "InService":
        reason = sm.describe_endpoint(EndpointName=d.endpoint_name).get("FailureReason", "no reason given")
        raise RuntimeError(f"endpoint {d.endpoint_name} is {status}: {reason}")
    if d.autoscaling_max > 0:
        enable_autoscaling(autoscaling, d.endpoint_name, d.instance_count, d.autoscaling_max,
                           d.autoscaling_target)
    return Deployment(d.endpoint_name, endpoint_config, model, model_data, status,
                      capture["DestinationS3Uri"] if capture else "off")


def data_capture(cfg: Config) -> dict | None:
    """The endpoint config's DataCaptureConfig (None with monitor.capture off). Our answers are
    declared JSON, so they are stored readable; the photos, when captured, BASE64."""
    m = cfg.monitor
    if not m.capture:
        return None
    if not 0 < m.sampling_percentage <= 100:
        raise ValueError(f"monitor.sampling_percentage={m.sampling_percentage}: give 1..100")
    if not cfg.aws.bucket:
        raise ConfigError("data capture writes to s3://BUCKET/PREFIX/capture/: set aws.bucket, or deploy --no-capture")
    modes = [{"CaptureMode": "Output"}] + ([{"CaptureMode": "Input"}] if m.capture_input else [])
    return {"EnableCapture": True, "InitialSamplingPercentage": m.sampling_percentage,
            "DestinationS3Uri": capture_uri(cfg), "CaptureOptions": modes,
            "CaptureContentTypeHeader": {"JsonContentTypes": list(JSON_CONTENT_TYPES)}}


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def enable_autoscaling(autoscaling, endpoint: str, min_count: int, max_count: int, target: float) -> None:
    """Target tracking on invocations per instance (per minute)."""
    if max_count < min_count:
        raise ValueError(f"deploy.autoscaling_max ({max_count}) < deploy.instance_count ({min_count})")
    autoscaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint),
                                         ScalableDimension=SCALABLE_DIMENSION,
                                         MinCapacity=min_count, MaxCapacity=max_count)
    autoscaling.put_scaling_policy(
        PolicyName=f"{endpoint}-invocations", ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300, "ScaleOutCooldown": 60})
    log.info("autoscaling %s: %d..%d instances, target %.0f invocations/instance/min",
             endpoint, min_count, max_count, target)


def invoke(runtime, endpoint: str, body: bytes, content_type: str = "image/jpeg",
           expected_quantity: int | None = None) -> tuple[str, bytes]:
    """One InvokeEndpoint call: (response content type, body)."""
    kwargs = {}
    if expected_quantity is not None:
        kwargs["CustomAttributes"] = f"expected_quantity={expected_quantity}"
    resp = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type,
                                   Accept="application/json", **kwargs)
    return resp.get("ContentType", ""), resp["Body"].read()
