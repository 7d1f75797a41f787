"""``orchestrate teardown``: delete what orchestrate created for one stack, nothing else.

A resource qualifies only when it carries both tags (a monitor schedule through its
schedule group: schedules take no tags) ``bincounter:managed-by =
orchestrate`` and ``bincounter:stack = STACK``. Training, tuning and transform
jobs stay (they cannot be deleted and cost nothing once finished; a running
audit's transform job is named so it can be stopped); S3 data stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orchestrate.core.aws import ROLE_PATH, is_ours
from orchestrate.endpoint.deploy import SCALABLE_DIMENSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str


def _sagemaker(sm, stack: str, op: str, key: str, name: str, arn: str) -> list[str]:
    found = []
    for page in sm.get_paginator(op).paginate():
        for item in page[key]:
            if is_ours(sm.list_tags(ResourceArn=item[arn]).get("Tags", []), stack):
                found.append(item[name])
    return sorted(found)


def find(sm, lam, iam, autoscaling, scheduler, cloudwatch, stack: str) -> list[Resource]:
    """Everything of ``stack``, in the order it must be deleted."""
    endpoints = _sagemaker(sm, stack, "list_endpoints", "Endpoints", "EndpointName", "EndpointArn")
    # the monitor's schedule group (its schedules go with it) and drift alarm first: they start jobs
    out = [Resource("schedule-group", g["Name"]) for page in scheduler.get_paginator("list_schedule_groups").paginate()
           for g in page["ScheduleGroups"]
           if is_ours(scheduler.list_tags_for_resource(ResourceArn=g["Arn"]).get("Tags", []), stack)]
    out += [Resource("alarm", a["AlarmName"]) for page in cloudwatch.get_paginator("describe_alarms").paginate()
            for a in page["MetricAlarms"]
            if is_ours(cloudwatch.list_tags_for_resource(ResourceARN=a["AlarmArn"]).get("Tags", []), stack)]
    for page in autoscaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker"):
        for t in page["ScalableTargets"]:
            if t["ScalableDimension"] == SCALABLE_DIMENSION and t["ResourceId"].split("/")[1] in endpoints:
                out.append(Resource("scalable-target", t["ResourceId"]))
    out += [Resource("endpoint", n) for n in endpoints]
    out += [Resource("endpoint-config", n) for n in _sagemaker(
        sm, stack, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn")]
    out += [Resource("model", n) for n in _sagemaker(sm, stack, "list_models", "Models", "ModelName", "ModelArn")]
    for page in lam.get_paginator("list_functions").paginate():
        for f in page["Functions"]:
            if is_ours(lam.list_tags(Resource=f["FunctionArn"]).get("Tags", {}), stack):
                out.append(Resource("lambda-function", f["FunctionName"]))
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=ROLE_PATH):
        for r in page["Roles"]:
            if is_ours(iam.list_role_tags(RoleName=r["RoleName"])["Tags"], stack):
                out.append(Resource("iam-role", r["RoleName"]))
    return out


def running_jobs(sm, stack: str) -> list[Resource]:
    """The stack's transform jobs (audits) still running: listed, never stopped (like training jobs)."""
    found = []
    for page in sm.get_paginator("list_transform_jobs").paginate(StatusEquals="InProgress"):
        for job in page["TransformJobSummaries"]:
            if is_ours(sm.list_tags(ResourceArn=job["TransformJobArn"]).get("Tags", []), stack):
                found.append(Resource("transform-job", job["TransformJobName"]))
    return found


def delete(sm, lam, iam, autoscaling, scheduler, cloudwatch, resources: list[Resource]) -> None:
    for r in resources:
        if r.kind == "schedule-group":
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=r.name):
                for s in page["Schedules"]:
                    scheduler.delete_schedule(Name=s["Name"], GroupName=r.name)
            scheduler.delete_schedule_group(Name=r.name)
        elif r.kind == "alarm":
            cloudwatch.delete_alarms(AlarmNames=[r.name])
        elif r.kind == "scalable-target":
            # Deregistering a target also deletes its scaling policies.
            autoscaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=r.name,
                                                   ScalableDimension=SCALABLE_DIMENSION)
        elif r.kind == "endpoint":
            sm.delete_endpoint(EndpointName=r.name)
        elif r.kind == "endpoint-config":
            sm.delete_endpoint_config(EndpointConfigName=r.name)
        elif r.kind == "model":
            sm.delete_model(ModelName=r.name)
        elif r.kind == "lambda-function":
            lam.delete_function(FunctionName=r.name)
        elif r.kind == "iam-role":
            for policy in iam.list_role_policies(RoleName=r.name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=r.name, PolicyName=policy)
            iam.delete_role(RoleName=r.name)
        log.info("deleted %s %s", r.kind, r.name)
