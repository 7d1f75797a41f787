"""orchestrate monitor on moto: the schedule (EventBridge Scheduler -> a SageMaker Processing job
on the training image), its two least-privilege roles and their trust, the two alarms that page
when no report comes, the metrics a run publishes, --status, the schedule following the served
model, and teardown removing all of it."""

from __future__ import annotations

import json
import operator
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from botocore.validate import validate_parameters

from bincounter.modelcard import ModelCard
from bincounter.monitoring import capture, reference
from orchestrate import cli
from orchestrate.monitor import schedule

pytestmark = pytest.mark.slow  # a moto server per session

TRAIN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
MODEL = "s3://models/exp1/jobs/t1/output/model.tar.gz"


def _config(tmp_path: Path) -> str:
    path = tmp_path / "t1.toml"
    path.write_text('[aws]\nrole_arn = "arn:aws:iam::123456789012:role/sm"\nbucket = "models"\nprefix = "exp1"\n'
                    f'stack = "t1"\n[images]\ntraining_image = "{TRAIN_IMAGE}"\n[deploy]\nendpoint_name = "t1-ep"\n')
    return str(path)


def _statements(iam, role: str) -> list[dict]:
    return json.loads(json.dumps(iam.get_role_policy(RoleName=role, PolicyName="bincounter-monitor")
                                 ["PolicyDocument"]))["Statement"]


def test_schedule_starts_a_processing_job_of_the_training_image_with_least_privilege_roles(aws, tmp_path, capsys):
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(1 day)", "--model-data", MODEL]
    assert cli.main(args, session=aws) == 0
    done = json.loads(capsys.readouterr().out)
    names = schedule.Names.of("t1")
    sched = aws.client("scheduler").get_schedule(Name=names.schedule, GroupName=names.group)
    assert sched["ScheduleExpression"] == "rate(1 day)" and sched["Target"]["Arn"] == schedule.TARGET
    assert sched["Target"]["RoleArn"] == done["scheduler_role"]
    request = json.loads(sched["Target"]["Input"])
    # the scheduler fills its placeholders in; with them filled, SageMaker's own API model accepts the request
    filled = json.loads(sched["Target"]["Input"].replace(schedule.EXECUTION_ID, "d32c5kddcf5bb8c3")
                        .replace(schedule.SCHEDULED_TIME, "2026-12-04T00:00:00Z"))
    sm = aws.client("sagemaker")
    validate_parameters(filled, sm.meta.service_model.operation_model("CreateProcessingJob").input_shape)
    assert filled["ProcessingJobName"] == "t1-monitor-d32c5kddcf5bb8c3"
    assert request["AppSpecification"]["ImageUri"] == TRAIN_IMAGE and request["RoleArn"] == done["job_role"]
    command = request["AppSpecification"]["ContainerEntrypoint"]
    assert command[:4] == ["python", "-m", "orchestrate", "monitor"] and "--publish-metrics" in command
    assert command[command.index("--captures") + 1] == "s3://models/exp1/capture/t1-ep/"  # the endpoint's capture
    assert command[command.index("--until") + 1] == schedule.SCHEDULED_TIME
    assert command[command.index("--window-hours") + 1] == "24"
    [out] = request["ProcessingOutputConfig"]["Outputs"]
    assert out["S3Output"]["S3Uri"] == f"s3://models/exp1/monitor/reports/{schedule.EXECUTION_ID}/"

    iam = aws.client("iam")
    job = _statements(iam, names.job_role)
    reads = next(s for s in job if s["Action"] == "s3:GetObject")["Resource"]
    assert reads[:2] == ["arn:aws:s3:::models/exp1/capture/t1-ep/*", "arn:aws:s3:::models/exp1/jobs/t1/output/model.tar.gz"]
    assert next(s for s in job if s["Action"] == "s3:PutObject")["Resource"] == \
        "arn:aws:s3:::models/exp1/monitor/reports/*"
    # what Processing itself needs to start the job: pull the training image from its repository
    pulls = next(s for s in job if "ecr:BatchGetImage" in s["Action"])
    assert pulls["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/bincounter-training"
    passes = next(s for s in _statements(iam, names.scheduler_role) if s["Action"] == "iam:PassRole")
    assert passes["Resource"] == done["job_role"]
    # each role trusts its service for this account's monitor jobs / schedule group only
    trust = iam.get_role(RoleName=names.scheduler_role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}, "ArnLike": {
        "aws:SourceArn": f"arn:aws:scheduler:us-east-1:123456789012:schedule-group/{names.group}"}}
    trust = iam.get_role(RoleName=names.job_role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/t1-monitor*"}

    assert cli.main(args + ["--window-hours", "6"], session=aws) == 0  # again: updated in place
    again = aws.client("scheduler").get_schedule(Name=names.schedule, GroupName=names.group)
    command = json.loads(again["Target"]["Input"])["AppSpecification"]["ContainerEntrypoint"]
    assert command[command.index("--window-hours") + 1] == "6"

    capsys.readouterr()
    assert cli.main(["--config", _config(tmp_path), "teardown", "--dry-run"], session=aws) == 0
    listed = capsys.readouterr().out
    for kind, name in (("schedule-group", names.group), ("alarm", names.alarm), ("alarm", names.silent_alarm),
                       ("iam-role", names.job_role), ("iam-role", names.scheduler_role)):
        assert f"would delete\t{kind}\t{name}" in listed
    assert cli.main(["--config", _config(tmp_path), "teardown"], session=aws) == 0
    assert aws.client("scheduler").list_schedule_groups(NamePrefix=names.group)["ScheduleGroups"] == []
    assert aws.client("cloudwatch").describe_alarms(AlarmNames=[names.alarm])["MetricAlarms"] == []
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("t1-monitor")]


def test_a_schedule_needs_s3_locations(aws, tmp_path, capsys):
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(1 day)", "--captures", str(tmp_path),
            "--model-data", MODEL]
    assert cli.main(args, session=aws) == 1
    assert "must be s3:// locations" in capsys.readouterr().err


def test_a_run_with_publish_metrics_puts_drift_answers_and_each_tests_statistic(aws, random_model_dir, tmp_path,
                                                                               capsys):
    model = tmp_path / "model"
    shutil.copytree(random_model_dir, model)
    classes = ModelCard.read(model).classes
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(classes)) * 0.5, 200)
    ref = reference.build(p, np.asarray(classes)[rng.integers(0, len(classes), 200)], classes,
                          ModelCard.read(model).verification)
    (model / reference.REFERENCE_FILE).write_text(json.dumps(ref))
    captures = tmp_path / "captures" / "t1-ep" / "AllTraffic" / "2026" / "12" / "03" / "08"
    captures.mkdir(parents=True)
    lines = [capture.line(json.dumps({"count": classes[int(np.argmax(r))],
                                      "probabilities": {str(c): float(v) for c, v in zip(classes, r)}}).encode(),
                          "application/json") for r in rng.dirichlet(np.ones(len(classes)) * 0.5, 60)]
    (captures / "a.jsonl").write_text("\n".join(lines) + "\n")
    args = ["--config", _config(tmp_path), "monitor", "--captures", str(tmp_path / "captures"), "--model-data",
            str(model), "--out", str(tmp_path / "report"), "--publish-metrics"]
    assert cli.main(args, session=aws) == 0
    assert capsys.readouterr().out.startswith("drift: ")
    metrics = aws.client("cloudwatch").list_metrics(Namespace=schedule.NAMESPACE)["Metrics"]
    by_name = {m["MetricName"] for m in metrics}
    assert {"Drift", "Answers", "DriftStatistic", "DriftPValue"} <= by_name
    distributions = {d["Value"] for m in metrics if m["MetricName"] == "DriftStatistic" for d in m["Dimensions"]
                     if d["Name"] == "Distribution"}
    assert distributions == {"counted class", "probability of the counted class", "entropy"}


_BREACHES = {"GreaterThanOrEqualToThreshold": operator.ge, "GreaterThanThreshold": operator.gt,
             "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}


def _state(cw, alarm: dict, now: datetime) -> str:
    """The state CloudWatch gives a one-period alarm at ``now`` by its documented rule (moto stores
    alarms but evaluates none): the alarm's statistic over the last period, read back from the
    metrics the run put; with no datapoint, TreatMissingData decides."""
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1)
    period = alarm["Period"]
    got = cw.get_metric_statistics(Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
                                   Dimensions=alarm["Dimensions"], StartTime=now - timedelta(seconds=period),
                                   EndTime=now, Period=period, Statistics=[alarm["Statistic"]])["Datapoints"]
    if not got:
        return {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm["TreatMissingData"], "INSUFFICIENT_DATA")
    values = [d[alarm["Statistic"]] for d in got]
    value = sum(values) if alarm["Statistic"] == "Sum" else max(values)
    return "ALARM" if _BREACHES[alarm["ComparisonOperator"]](value, alarm["Threshold"]) else "OK"


def test_a_schedule_whose_job_never_runs_leaves_both_alarms_paging(aws, tmp_path):
    """Each alarm's state is derived from the metrics a run really puts: before any run both page
    (TreatMissingData "notBreaching" in ``schedule.alarms`` would read the silent monitor as fine,
    and this test fails); a window too thin to test publishes no report, so both still page (publishing
    ``Reports`` for it would read an unjudged window as fine); a report within the period quiets both
    unless it says drift; a last report older than the period pages again (the job stopped running)."""
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(6 hours)", "--model-data", MODEL]
    assert cli.main(args, session=aws) == 0
    names = schedule.Names.of("t1")
    cw = aws.client("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=[names.alarm, names.silent_alarm])
              ["MetricAlarms"]}
    assert {a["Period"] for a in alarms.values()} == {6 * 3600}  # the time between runs

    def states(now: datetime) -> tuple[str, str]:
        return _state(cw, alarms[names.alarm], now), _state(cw, alarms[names.silent_alarm], now)

    # all in the past: CloudWatch refuses datapoints stamped more than two hours ahead
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=12)
    assert states(t0) == ("ALARM", "ALARM")  # never ran
    schedule.publish(cw, "t1-ep", {"drift": False, "n": 3, "tests": []}, t0 - timedelta(hours=1))
    assert states(t0) == ("ALARM", "ALARM")  # ran, but 3 answers: nothing judged
    tested = [{"distribution": "entropy", "statistic": 0.1, "p_value": 0.5}]
    schedule.publish(cw, "t1-ep", {"drift": False, "n": 60, "tests": tested}, t0 - timedelta(hours=1))
    assert states(t0) == ("OK", "OK")
    assert states(t0 + timedelta(hours=6)) == ("ALARM", "ALARM")  # the next run never came
    schedule.publish(cw, "t1-ep", {"drift": True, "n": 60, "tests": tested}, t0 + timedelta(hours=5))
    assert states(t0 + timedelta(hours=6)) == ("ALARM", "OK")  # it came and saw drift


def test_schedules_the_alarms_cannot_watch_are_refused_before_anything_is_made(aws, tmp_path, capsys):
    for expression, said in (("rate(2 days)", "every 172800 s"), ("cron(0 8 * * ? *)", "state it for a cron")):
        args = ["--config", _config(tmp_path), "monitor", "--schedule", expression, "--model-data", MODEL]
        assert cli.main(args, session=aws) == 1
        assert said in capsys.readouterr().err
    assert aws.client("iam").list_roles(PathPrefix="/bincounter/")["Roles"] == []
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "cron(0 8 * * ? *)", "--model-data", MODEL,
            "--set", "monitor.alarm_period_hours=24"]
    assert cli.main(args, session=aws) == 0


def _deploy(aws, tmp_path, model_data: str, capsys) -> dict:
    args = ["--config", _config(tmp_path), "--set", "images.serving_image=123456789012.dkr.ecr.us-east-1.amazonaws."
            "com/bincounter-serving:1.0", "--set", "monitor.capture=false", "deploy", "--model-data", model_data,
            "--poll-seconds", "0"]
    assert cli.main(args, session=aws) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_deploy_points_the_schedule_at_the_model_the_endpoint_now_serves(aws, tmp_path, capsys):
    first = "s3://models/exp1/output/t1-train-1/output/model.tar.gz"
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(1 day)", "--model-data", first]
    assert cli.main(args, session=aws) == 0
    capsys.readouterr()
    newer = "s3://models/exp1/output/t1-train-2/output/model.tar.gz"
    start = len(aws.api_calls)
    done = _deploy(aws, tmp_path, newer, capsys)
    assert done["monitor_judged_before"] == first
    found = schedule.current(aws.client("scheduler"), schedule_cfg(tmp_path))
    assert schedule.judged_model(found) == newer
    # the job role reads the stack's models, so following needed no IAM call at all
    assert [c[:2] for c in aws.api_calls[start:] if c[0] == "iam"] == []
    assert ("scheduler", "UpdateSchedule") in [c[:2] for c in aws.api_calls[start:]]
    assert cli.main(["--config", _config(tmp_path), "monitor", "--status"], session=aws) == 0
    said = capsys.readouterr().out
    assert f"judging against {newer}" in said and "stale" not in said


def test_a_model_outside_the_stacks_prefixes_leaves_the_endpoint_updated_and_says_how_to_repair(
        aws, tmp_path, capsys):
    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(1 day)", "--model-data", MODEL]
    assert cli.main(args, session=aws) == 0
    capsys.readouterr()
    elsewhere = "s3://other-bucket/models/model.tar.gz"
    args = ["--config", _config(tmp_path), "--set", "images.serving_image=123456789012.dkr.ecr.us-east-1.amazonaws."
            "com/bincounter-serving:1.0", "--set", "monitor.capture=false", "deploy", "--model-data", elsewhere,
            "--poll-seconds", "0"]
    assert cli.main(args, session=aws) == 1
    err = capsys.readouterr().err
    assert f"now serves {elsewhere}, but the monitor's schedule could not follow it" in err
    assert "monitor --schedule" in err
    assert cli.main(["--config", _config(tmp_path), "monitor", "--status"], session=aws) == 0
    said = capsys.readouterr().out
    assert f"stale: the endpoint serves {elsewhere}" in said


def test_status_names_each_run_and_the_reason_a_run_failed(aws, tmp_path, capsys):
    from moto.sagemaker.models import sagemaker_backends

    args = ["--config", _config(tmp_path), "monitor", "--schedule", "rate(1 day)", "--model-data", MODEL]
    assert cli.main(args, session=aws) == 0
    request = json.loads(aws.client("scheduler").get_schedule(Name="t1-monitor", GroupName="bincounter-t1")
                         ["Target"]["Input"].replace(schedule.EXECUTION_ID, "run1")
                         .replace(schedule.SCHEDULED_TIME, "2026-12-04T00:00:00Z"))
    sm = aws.client("sagemaker")
    sm.create_processing_job(**request)
    # the world's state, set in the emulator: the run failed (moto completes every job at once)
    job = sagemaker_backends["123456789012"]["us-east-1"].processing_jobs["t1-monitor-run1"]
    job.processing_job_status, job.failure_reason = "Failed", "CannotStartContainerError: image pull: AccessDenied"
    capsys.readouterr()
    assert cli.main(["--config", _config(tmp_path), "monitor", "--status"], session=aws) == 0
    said = capsys.readouterr().out
    assert "t1-monitor-run1 Failed" in said and "image pull: AccessDenied" in said
    assert "alarm t1-monitor-drift:" in said and "alarm t1-monitor-silent:" in said


def schedule_cfg(tmp_path):
    from orchestrate.core.config import load

    return load(_config(tmp_path), env={})
