"""``orchestrate monitor --schedule``: the report on a timer in the cloud, and an alarm that
pages when the report does not come.

An EventBridge Scheduler schedule (in a schedule group of the stack, which carries our tags:
schedules themselves take none) starts a SageMaker Processing job with the universal target
``sagemaker:createProcessingJob``. The job runs ``python -m orchestrate monitor`` on the
**training image**: it already holds scipy, boto3 and this package, while the serving image
stays small and torch- and scipy-free. The job reads the window's captures and the model
straight from S3, writes the report under ``PREFIX/monitor/reports/``, and only then puts a
CloudWatch metric per drift statistic, ``Drift`` (0/1) and ``Reports`` (1), stamped with the
run's scheduled time.

Two alarms, both treating a period without data as breaching, because a monitor that does not
run must not read as healthy: ``<stack>-monitor-drift`` (Drift >= 1, or no report) and
``<stack>-monitor-silent`` (no report). Why a metric published only on success and not an
EventBridge rule on the job's failed state: silence also comes from jobs that never start (the
scheduler's role cannot pass the job's role, CreateProcessingJob is refused, the image cannot be
pulled before the job exists), and those raise no job state change. ``monitor --status``
prints the last runs with their failure reasons and both alarms' states.

Two roles, each with the policy file beside this module and nothing broader: the job's (read
the capture prefix, the scheduled model and the stack's trained models, pull the training image,
write the reports, put metrics in our namespace and SageMaker's, its own logs) and the
scheduler's (start processing jobs of our prefix, pass the job's role and no other). Each trusts
its service only for this account and for the stack's jobs or schedule group.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrate.core.aws import ROLE_PATH, tags
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.iam import ensure_role, fill, trust
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
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# CloudWatch: an alarm's period times its evaluation periods may not pass one day
MAX_PERIOD = 86400


@dataclass(frozen=True)
class Names:
    group: str
    schedule: str
    job_prefix: str
    job_role: str
    scheduler_role: str
    alarm: str
    silent_alarm: str

    @classmethod
    def of(cls, stack: str) -> "Names":
        s = stack[:24]
        return cls(f"bincounter-{s}", f"{s}-monitor", f"{s}-monitor", f"{s}-monitor-job-role",
                   f"{s}-monitor-scheduler-role", f"{s}-monitor-drift", f"{s}-monitor-silent")


def repository_arn(image: str) -> str:
    """The ECR repository ARN of an image URI ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG``."""
    m = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)(?:[:@].*)?", image)
    if not m:
        raise ConfigError(f"the monitor's job pulls its image from ECR, and {image!r} is not an ECR image URI")
    return f"arn:aws:ecr:{m.group(2)}:{m.group(1)}:repository/{m.group(3)}"


def policies(cfg: Config, account: str, captures: str, model_data: str, reports: str, job_role_arn: str,
             names: Names, image: str) -> tuple[dict, dict]:
    """(the job role's policy, the scheduler role's policy)."""
    (cb, cp), (mb, mk), (rb, rp) = split_s3(captures), split_s3(model_data), split_s3(reports)
    job = fill(JOB_POLICY.read_text(), {"CaptureBucket": cb, "CapturePrefix": cp, "ModelBucket": mb, "ModelKey": mk,
                                        "ReportBucket": rb, "ReportPrefix": rp, "Namespace": NAMESPACE,
                                        "Region": cfg.aws.region, "AccountId": account,
                                        "ImageRepositoryArn": repository_arn(image),
                                        "StackBucket": cfg.require("aws", "bucket"),
                                        "StackPrefix": cfg.aws.prefix.strip("/")})
    scheduler = fill(SCHEDULER_POLICY.read_text(), {"Region": cfg.aws.region, "AccountId": account,
                                                    "JobPrefix": names.job_prefix.lower(), "JobRoleArn": job_role_arn})
    return job, scheduler


def trusts(cfg: Config, account: str, names: Names) -> tuple[dict, dict]:
    """(the job role's trust, the scheduler role's trust): SageMaker for the stack's monitor
    jobs only, EventBridge Scheduler for the stack's schedule group only."""
    region = cfg.aws.region
    return (trust("sagemaker.amazonaws.com", account,
                  f"arn:aws:sagemaker:{region}:{account}:processing-job/{names.job_prefix.lower()}*"),
            trust("scheduler.amazonaws.com", account, f"arn:aws:scheduler:{region}:{account}:schedule-group/{names.group}"))


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


def alarm_period(expression: str, stated_hours: int = 0) -> int:
    """Seconds between two runs: the alarms' period. From a ``rate(...)`` expression, or stated
    (``[monitor] alarm_period_hours``) for a ``cron(...)`` one; at most a day, so that silence
    pages within a day."""
    m = _RATE.fullmatch(expression.strip())
    if stated_hours:
        seconds = stated_hours * 3600
    elif m:
        seconds = int(m.group(1)) * _UNIT_SECONDS[m.group(2).rstrip("s")]
    else:
        raise ConfigError(f"--schedule {expression!r}: the alarms need the time between runs; use rate(N hours|"
                          "days|minutes), or state it for a cron expression with --set monitor.alarm_period_hours=N")
    if not 300 <= seconds <= MAX_PERIOD:
        raise ConfigError(f"--schedule {expression!r}: runs every {seconds} s; the silence alarm needs a run "
                          "every 5 minutes to 1 day (CloudWatch evaluates an alarm over at most a day)")
    return seconds


@dataclass(frozen=True)
class Scheduled:
    schedule: str
    group: str
    expression: str
    job_role: str
    scheduler_role: str
    alarm: str
    silent_alarm: str
    alarm_period_seconds: int
    reports: str
    model_data: str


def alarms(cloudwatch, cfg: Config, names: Names, period: int, reports: str) -> None:
    """The drift alarm and the silence alarm; a period without a report breaches both."""
    dims = [{"Name": "Endpoint", "Value": cfg.deploy.endpoint_name}]
    common = dict(Namespace=NAMESPACE, Dimensions=dims, Period=period, EvaluationPeriods=1, DatapointsToAlarm=1,
                  TreatMissingData="breaching", Tags=tags(cfg.aws.stack))
    cloudwatch.put_metric_alarm(
        AlarmName=names.alarm, MetricName="Drift", Statistic="Maximum", Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmDescription=f"bincounter monitor: live bins drifted, or no report came ({reports}; "
                         f"`orchestrate monitor --status` tells which)", **common)
    cloudwatch.put_metric_alarm(
        AlarmName=names.silent_alarm, MetricName="Reports", Statistic="Sum", Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
        AlarmDescription="bincounter monitor: no report in a whole period: the job failed, was stopped or never "
                         "started (`orchestrate monitor --status` names the failure)", **common)


def schedule(scheduler, iam, cloudwatch, cfg: Config, account: str, image: str, expression: str,
             captures: str, model_data: str, window_hours: int) -> Scheduled:
    """Create (or update) the roles, the schedule group and schedule, and the two alarms."""
    names = Names.of(cfg.aws.stack)
    period = alarm_period(expression, cfg.monitor.alarm_period_hours)
    reports = f"{cfg.s3_base}/monitor/reports/"
    job_arn = f"arn:aws:iam::{account}:role{ROLE_PATH}{names.job_role}"
    job_policy, scheduler_policy = policies(cfg, account, captures, model_data, reports, job_arn, names, image)
    job_trust, scheduler_trust = trusts(cfg, account, names)
    job_arn = ensure_role(iam, names.job_role, job_trust, POLICY_NAME, job_policy, cfg.aws.stack,
                          "bincounter monitor: read captures and the model, write reports and metrics")
    scheduler_arn = ensure_role(iam, names.scheduler_role, scheduler_trust, POLICY_NAME, scheduler_policy,
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
    alarms(cloudwatch, cfg, names, period, reports)
    return Scheduled(names.schedule, names.group, expression, job_arn, scheduler_arn, names.alarm,
                     names.silent_alarm, period, reports, model_data)


def current(scheduler, cfg: Config) -> dict | None:
    """The stack's schedule as EventBridge holds it (None: the stack has none)."""
    names = Names.of(cfg.aws.stack)
    try:
        return scheduler.get_schedule(Name=names.schedule, GroupName=names.group)
    except scheduler.exceptions.ResourceNotFoundException:
        return None


def judged_model(found: dict) -> str:
    """The model.tar.gz a schedule's runs judge the captures against."""
    command = json.loads(found["Target"]["Input"])["AppSpecification"]["ContainerEntrypoint"]
    return command[command.index("--model-data") + 1]


def model_prefixes(cfg: Config) -> tuple[str, ...]:
    """Where the stack's trained and tuned models lie: the job role reads any model there, so that
    the schedule can follow a new model without an IAM write (``follow``)."""
    return f"{cfg.s3_base}/output/", f"{cfg.s3_base}/tuning/"


def follow(scheduler, cfg: Config, model_data: str) -> str:
    """Point the stack's schedule at ``model_data``, the model the endpoint now serves; "" when the
    stack has no schedule, else the model it judged against before. Idempotent. A model outside
    the stack's model prefixes (which the job role may not read) is refused, naming the command
    that grants it (``monitor --schedule``, run with IAM rights)."""
    found = current(scheduler, cfg)
    if found is None:
        return ""
    before = judged_model(found)
    if before == model_data:
        return before
    if not model_data.startswith(model_prefixes(cfg)):
        raise ConfigError(f"the monitor's job role may read models under {' or '.join(model_prefixes(cfg))} only, "
                          f"not {model_data}: run `orchestrate monitor --schedule '{found['ScheduleExpression']}'` "
                          "to point the schedule and its role at it")
    request = json.loads(found["Target"]["Input"])
    command = request["AppSpecification"]["ContainerEntrypoint"]
    command[command.index("--model-data") + 1] = model_data
    keep = {k: found[k] for k in ("Name", "GroupName", "ScheduleExpression", "FlexibleTimeWindow", "State",
                                  "Description") if k in found}
    scheduler.update_schedule(**keep, Target={**found["Target"], "Input": json.dumps(request)})
    log.info("monitor schedule %s now judges against %s (was %s)", found["Name"], model_data, before)
    return before


def publish(cloudwatch, endpoint: str, comparison: dict, when=None) -> None:
    """``Answers``; when the window held enough answers to test, ``Drift`` (0/1), ``Reports`` (1: this run
    judged a window), and each test's statistic
    and p-value by distribution, all stamped ``when`` (the run's scheduled time; default now)."""
    dims = [{"Name": "Endpoint", "Value": endpoint}]
    stamp = {"Timestamp": when} if when is not None else {}
    data = [{"MetricName": "Answers", "Dimensions": dims, "Value": float(comparison["n"]), "Unit": "Count", **stamp}]
    if comparison["tests"]:  # a window too thin to test reports nothing: the alarms' missing data says so
        data += [{"MetricName": "Drift", "Dimensions": dims, "Value": float(comparison["drift"]), **stamp},
                 {"MetricName": "Reports", "Dimensions": dims, "Value": 1.0, "Unit": "Count", **stamp}]
    for t in comparison["tests"]:
        by = dims + [{"Name": "Distribution", "Value": t["distribution"]}]
        data += [{"MetricName": "DriftStatistic", "Dimensions": by, "Value": float(t["statistic"]), **stamp},
                 {"MetricName": "DriftPValue", "Dimensions": by, "Value": float(t["p_value"]), **stamp}]
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
