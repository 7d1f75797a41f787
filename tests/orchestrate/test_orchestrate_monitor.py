"""orchestrate monitor on moto: the schedule (EventBridge Scheduler -> a SageMaker Processing job
on the training image), its two least-privilege roles, the drift alarm, the metrics a run
publishes, and teardown removing all of it."""

from __future__ import annotations

import json
import shutil
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
    assert reads == ["arn:aws:s3:::models/exp1/capture/t1-ep/*", "arn:aws:s3:::models/exp1/jobs/t1/output/model.tar.gz"]
    assert next(s for s in job if s["Action"] == "s3:PutObject")["Resource"] == \
        "arn:aws:s3:::models/exp1/monitor/reports/*"
    assert next(s for s in job if s["Action"] == "cloudwatch:PutMetricData")["Condition"] == \
        {"StringEquals": {"cloudwatch:namespace": schedule.NAMESPACE}}
    passes = next(s for s in _statements(iam, names.scheduler_role) if s["Action"] == "iam:PassRole")
    assert passes["Resource"] == done["job_role"]
    trust = iam.get_role(RoleName=names.scheduler_role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}

    [alarm] = aws.client("cloudwatch").describe_alarms(AlarmNames=[names.alarm])["MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (schedule.NAMESPACE, "Drift", 1.0)
    assert alarm["Dimensions"] == [{"Name": "Endpoint", "Value": "t1-ep"}]

    assert cli.main(args + ["--window-hours", "6"], session=aws) == 0  # again: updated in place
    again = aws.client("scheduler").get_schedule(Name=names.schedule, GroupName=names.group)
    command = json.loads(again["Target"]["Input"])["AppSpecification"]["ContainerEntrypoint"]
    assert command[command.index("--window-hours") + 1] == "6"

    capsys.readouterr()
    assert cli.main(["--config", _config(tmp_path), "teardown", "--dry-run"], session=aws) == 0
    listed = capsys.readouterr().out
    for kind, name in (("schedule-group", names.group), ("alarm", names.alarm), ("iam-role", names.job_role),
                       ("iam-role", names.scheduler_role)):
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
