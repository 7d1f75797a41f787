"""``orchestrate monitor --schedule``: the report on a timer in the cloud.

An EventBridge Scheduler schedule (in a schedule group of the stack, which carries our tags:
schedules themselves take none) starts a SageMaker Processing job with the universal target
``sagemaker:createProcessingJob``. The job runs ``python -m orchestrate monitor`` on the
**training image**: it already holds scipy, boto3 and this package, while the serving image
stays small and torch- and scipy-free. The job reads the window's captures and the model
straight from S3, writes the report under ``PREFIX/monitor/reports/``, and puts a CloudWatch
metric per drift statistic and ``Drift`` (0/1), on which an alarm fires. Two roles, each with
the policy file beside this module and nothing broader: the job's (read the capture prefix and
the model, write the reports, put metrics in our namespace, its own logs) and the scheduler's
(start processing jobs of our prefix, pass the job's role and no other).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from orchestrate.core.aws import ROLE_PATH, tags
from orchestrate.core.config import Config
from orchestrate.core.iam import ensure_role, fill
from orchestrate.core.store import split_s3

log = logging.getLogger(__name__)

TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
NAMESPACE = "bincounter/monitor"
HERE = Path(__file__).resolve().parent
JOB_POLICY, SCHEDULER_POLICY = HERE / "job-policy.json", HERE / "scheduler-policy.json"
# filled in by EventBridge Scheduler at each run
EXECUTION_ID, SCHEDULED_TIME = "<aws.scheduler.execution-id>", "<aws.scheduler.scheduled-time>"
POLICY_NAME = "bincounter-monitor"
PROCESSING_OUT = "/opt/ml/processing/output"


@dataclass(frozen=True)
class Names:
    group: str
    schedule: str
    job_prefix: str
    job_role: str
    scheduler_role: str
    alarm: str

    @classmethod
    def of(cls, stack: str) -> "Names":
        s = stack[:24]
        return cls(f"bincounter-{s}", f"{s}-monitor", f"{s}-monitor", f"{s}-monitor-job-role",
                   f"{s}-monitor-scheduler-role", f"{s}-monitor-drift")


def policies(cfg: Config, account: str, captures: str, model_data: str, reports: str, job_role_arn: str,
             names: Names) -> tuple[dict, dict]:
    """(the job role's policy, the scheduler role's policy)."""
    (cb, cp), (mb, mk), (rb, rp) = split_s3(captures), split_s3(model_data), split_s3(reports)
    job = fill(JOB_POLICY.read_text(), {"CaptureBucket": cb, "CapturePrefix": cp, "ModelBucket": mb, "ModelKey": mk,
                                        "ReportBucket": rb, "ReportPrefix": rp, "Namespace": NAMESPACE,
                                        "Region": cfg.aws.region, "AccountId": account})
    scheduler = fill(SCHEDULER_POLICY.read_text(), {"Region": cfg.aws.region, "AccountId": account,
                                                    "JobPrefix": names.job_prefix.lower(), "JobRoleArn": job_role_arn})
    return job, scheduler


def processing_request(cfg: Config, image: str, role_arn: str, captures: str, model_data: str, reports: str,
                       window_hours: int, names: Names) -> dict:
    """CreateProcessingJob, with the scheduler's placeholders for the run's id and time."""
    command = ["python", "-m", "orchestrate", "monitor", "--captures", captures, "--model-data", model_data,
               "--until", SCHEDULED_TIME, "--window-hours", str(window_hours), "--out", PROCESSING_OUT,
               "--publish-metrics", "--set", f"deploy.endpoint_name={cfg.deploy.endpoint_name}"]
    return {"ProcessingJobName": f"{names.job_prefix}-{EXECUTION_ID}", "RoleArn": role_arn,
            "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": command},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": cfg.monitor.instance_type,
                                                      "VolumeSizeInGB": 10}},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "report", "S3Output": {
                "S3Uri": f"{reports}{EXECUTION_ID}/", "LocalPath": PROCESSING_OUT, "S3UploadMode": "EndOfJob"}}]},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            # the container has no orchestrate.toml: its region comes from here
            "Environment": {"ORCHESTRATE_AWS_REGION": cfg.aws.region},
            "Tags": tags(cfg.aws.stack)}


@dataclass(frozen=True)
class Scheduled:
    schedule: str
    group: str
    expression: str
    job_role: str
    scheduler_role: str
    alarm: str
    reports: str


def schedule(scheduler, iam, cloudwatch, cfg: Config, account: str, image: str, expression: str,
             captures: str, model_data: str, window_hours: int) -> Scheduled:
    """Create (or update) the roles, the schedule group and schedule, and the drift alarm."""
    names = Names.of(cfg.aws.stack)
    reports = f"{cfg.s3_base}/monitor/reports/"
    job_arn = f"arn:aws:iam::{account}:role{ROLE_PATH}{names.job_role}"
    job_policy, scheduler_policy = policies(cfg, account, captures, model_data, reports, job_arn, names)
    job_arn = ensure_role(iam, names.job_role, "sagemaker.amazonaws.com", POLICY_NAME, job_policy, cfg.aws.stack,
                          "bincounter monitor: read captures and the model, write reports and metrics")
    scheduler_arn = ensure_role(iam, names.scheduler_role, "scheduler.amazonaws.com", POLICY_NAME, scheduler_policy,
                                cfg.aws.stack, "bincounter monitor: start the monitor's processing jobs")
    try:
        scheduler.get_schedule_group(Name=names.group)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=names.group, Tags=[{"Key": t["Key"], "Value": t["Value"]}
                                                                 for t in tags(cfg.aws.stack)])
    request = processing_request(cfg, image, job_arn, captures, model_data, reports, window_hours, names)
    spec = dict(Name=names.schedule, GroupName=names.group, ScheduleExpression=expression,
                FlexibleTimeWindow={"Mode": "OFF"}, State="ENABLED",
                Description=f"bincounter monitor of endpoint {cfg.deploy.endpoint_name}",
                Target={"Arn": TARGET, "RoleArn": scheduler_arn, "Input": json.dumps(request),
                        "RetryPolicy": {"MaximumRetryAttempts": 2}})
    try:
        scheduler.get_schedule(Name=names.schedule, GroupName=names.group)
        scheduler.update_schedule(**spec)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule(**spec)
    cloudwatch.put_metric_alarm(
        AlarmName=names.alarm, AlarmDescription=f"bincounter monitor: live bins drifted ({reports})",
        Namespace=NAMESPACE, MetricName="Drift", Dimensions=[{"Name": "Endpoint", "Value": cfg.deploy.endpoint_name}],
        Statistic="Maximum", Period=3600, EvaluationPeriods=1, Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(cfg.aws.stack))
    return Scheduled(names.schedule, names.group, expression, job_arn, scheduler_arn, names.alarm, reports)


def publish(cloudwatch, endpoint: str, comparison: dict) -> None:
    """``Drift`` (0/1), ``Answers``, and each test's statistic and p-value by distribution."""
    dims = [{"Name": "Endpoint", "Value": endpoint}]
    data = [{"MetricName": "Drift", "Dimensions": dims, "Value": float(comparison["drift"])},
            {"MetricName": "Answers", "Dimensions": dims, "Value": float(comparison["n"]), "Unit": "Count"}]
    for t in comparison["tests"]:
        by = dims + [{"Name": "Distribution", "Value": t["distribution"]}]
        data += [{"MetricName": "DriftStatistic", "Dimensions": by, "Value": float(t["statistic"])},
                 {"MetricName": "DriftPValue", "Dimensions": by, "Value": float(t["p_value"])}]
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
