"""Least privilege by denial, for the roles whose calls run against moto here: the monitor job
(`orchestrate monitor --publish-metrics`, what the scheduled job runs), the monitor's scheduler
(the CreateProcessingJob request EventBridge Scheduler sends) and the release policy (`golden`,
`promote`, `deploy`). Each runs as an IAM user holding exactly its policy with moto's IAM
enforcement on; every recorded call is held against the policy (tests/iam_helpers); and each
statement, removed, makes the command fail with AccessDenied or leaves a service need unmet."""

from __future__ import annotations

import json
import shutil
import urllib.request

import boto3
import numpy as np
import pytest

from aws_helpers import ROLE_ARN, record
from bincounter.modelcard import ModelCard
from bincounter.monitoring import capture, reference
from bincounter.reviews import HumanLabel, digest, write_labels
from devtools.random_model import model_archive
from iam_helpers import denied, requests, shape
from iam_moto import enforced, principal, print_sweep, sweep
from iam_stack import MONITORED_MODEL, TRAIN_IMAGE, service_needs, stack_policies
from orchestrate import cli
from orchestrate.monitor import schedule
from orchestrate.review.golden_audit import ScoreCache, cache_key
from promote_helpers import CARD, TRUTH, answers_right_on, trained

pytestmark = pytest.mark.slow  # a moto server

POLICIES = stack_policies()
NEEDS = service_needs()
STACK = ["--set", "aws.bucket=models", "--set", "aws.prefix=exp1", "--set", "aws.stack=t1",
         "--set", f"aws.role_arn={ROLE_ARN}", "--set", "deploy.endpoint_name=t1-ep"]
_users = iter(range(10_000))


def run_as(moto_server, policy: dict, argv: list[str], capsys) -> tuple[bool, list, str]:
    """``orchestrate ARGV`` as a principal holding exactly ``policy``, with enforcement on."""
    sess = record(principal(policy, f"who-{next(_users)}"))
    capsys.readouterr()
    with enforced(moto_server):
        code = cli.main(argv, session=sess)
    err = capsys.readouterr().err
    return code == 0, sess.api_calls, err


# --- the monitor job -------------------------------------------------------------------------

@pytest.fixture
def monitored(aws, random_model_dir, tmp_path):
    """The stack's bucket with an hour of captures and the monitored model (card + reference)."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    model = tmp_path / "model"
    shutil.copytree(random_model_dir, model)
    classes = ModelCard.read(model).classes
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(classes)), 200)
    ref = reference.build(p, np.asarray(classes)[rng.integers(0, len(classes), 200)], classes,
                          ModelCard.read(model).verification)
    (model / reference.REFERENCE_FILE).write_text(json.dumps(ref))
    bucket, _, key = MONITORED_MODEL.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=model_archive(model, tuple(f.name for f in model.iterdir())))
    lines = [capture.line(json.dumps({"count": classes[int(np.argmax(r))],
                                      "probabilities": {str(c): float(v) for c, v in zip(classes, r)}}).encode(),
                          "application/json") for r in rng.dirichlet(np.ones(len(classes)), 40)]
    s3.put_object(Bucket="models", Key="exp1/capture/t1-ep/AllTraffic/2026/12/06/10/a.jsonl",
                  Body="\n".join(lines).encode())
    return ["monitor", *STACK, "--captures", "s3://models/exp1/capture/t1-ep/", "--model-data", MONITORED_MODEL,
            "--out", str(tmp_path / "report"), "--publish-metrics", "--until", "2026-12-06T12:00:00"]


def test_the_monitor_job_runs_with_exactly_its_policy_and_needs_every_statement(moto_server, monitored, capsys):
    policy = POLICIES["monitor job"]
    ok, calls, err = run_as(moto_server, policy, monitored, capsys)
    assert ok, err
    assert {f"{s}:{o}" for s, o, _ in calls} >= {"s3:ListObjectsV2", "s3:GetObject", "cloudwatch:PutMetricData"}
    assert [str(r) for r in denied(policy, requests(calls))] == []
    assert shape(requests(calls)) == []  # each ARN of a type AWS says its action takes
    found = sweep(policy, lambda less: run_as(moto_server, less, monitored, capsys), NEEDS["monitor job"])
    print_sweep("monitor job", found)
    assert all(found.values()), found


def test_the_monitor_job_reads_no_capture_prefix_but_its_own(moto_server, monitored, capsys):
    """A window of another endpoint's captures: moto lets the listing through (it evaluates no
    StringLike condition), the evaluator denies it on the policy's s3:prefix condition."""
    argv = [a.replace("capture/t1-ep/", "capture/other-ep/") for a in monitored]
    _, calls, _ = run_as(moto_server, POLICIES["monitor job"], argv, capsys)
    assert [(r.action, r.context) for r in denied(POLICIES["monitor job"], requests(calls))] == [
        ("s3:ListBucket", {"s3:prefix": "exp1/capture/other-ep/"})]


# --- the monitor's scheduler -----------------------------------------------------------------

def _scheduled_request(job_role: str) -> dict:
    from orchestrate.monitor.schedule import Names, processing_request
    from iam_stack import stack_config

    request = processing_request(stack_config(), TRAIN_IMAGE, job_role, "s3://models/exp1/capture/t1-ep/",
                                 MONITORED_MODEL, "s3://models/exp1/monitor/reports/", 24, Names.of("t1"))
    return json.loads(json.dumps(request).replace(schedule.EXECUTION_ID, "a1b2c3")
                      .replace(schedule.SCHEDULED_TIME, "2026-12-06T00:00:00Z"))


def test_the_scheduler_starts_the_job_with_exactly_its_policy_and_needs_every_statement(aws, moto_server, capsys):
    job_role = "arn:aws:iam::123456789012:role/bincounter/t1-monitor-job-role"

    def scenario(policy):
        sess = record(principal(policy, f"scheduler-{next(_users)}"))
        try:
            with enforced(moto_server):
                sess.client("sagemaker").create_processing_job(**_scheduled_request(job_role))
        except Exception as exc:  # what the scheduler would log as the target's error
            return False, sess.api_calls, str(exc)
        return True, sess.api_calls, ""

    policy = POLICIES["monitor scheduler"]
    ok, calls, err = scenario(policy)
    assert ok, err
    assert [str(r) for r in denied(policy, requests(calls))] == []
    assert shape(requests(calls)) == []  # each ARN of a type AWS says its action takes
    # it passes the job's role to SageMaker, and no other role, to no other service
    other = dict(_scheduled_request(job_role), RoleArn="arn:aws:iam::123456789012:role/admin")
    assert [r.action for r in denied(policy, requests([("sagemaker", "CreateProcessingJob", other)]))] == [
        "iam:PassRole"]
    found = sweep(policy, scenario, NEEDS["monitor scheduler"])
    print_sweep("monitor scheduler", found)
    assert all(found.values()), found


# --- release: golden, promote, deploy --------------------------------------------------------

def _reset(moto_server) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()


def release_scenario(aws, moto_server, tmp_path, capsys, policy: dict) -> tuple[bool, list, str]:
    """From an empty account: a schedule and two trained jobs (set-up, as admin); then as the
    principal: golden from people's counts; promote scoring in the cloud (no cached score: the
    transform runs, moto writes no output, so the first candidate is refused); promote again on
    a kept score (approved); deploy it (the endpoint made, the schedule moved onto it)."""
    _reset(moto_server)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.create_bucket(Bucket="photos")
    assert cli.main(["monitor", *STACK, "--set", f"images.training_image={TRAIN_IMAGE}", "--schedule",
                     "rate(1 day)", "--model-data", MONITORED_MODEL], session=aws) == 0
    labels = write_labels(tmp_path / "labels.jsonl", [HumanLabel(f"s3://photos/images/{b}.jpg", str(c))
                                                      for b, c in TRUTH.items()])
    settings = [*STACK, "--set", "images.serving_image=123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                "bincounter-serving:1.0", "--set", "monitor.capture=false"]
    trained(aws, CARD)
    sess = record(principal(policy, f"releaser-{next(_users)}"))
    capsys.readouterr()
    steps = [["golden", *settings, "--from", str(labels), "--holdout", "1", "--out", str(tmp_path / "g")],
             ["promote", *settings]]
    with enforced(moto_server):
        for argv in steps:
            code = cli.main(argv, session=sess)
            if code not in (0, 3):
                return False, sess.api_calls, capsys.readouterr().err
    second = trained(aws, CARD)
    sha = digest(tmp_path / "g" / "golden.manifest")
    ScoreCache("s3://models/exp1/golden/scores", s3).put(cache_key(sha, second), answers_right_on(60))
    with enforced(moto_server):
        for argv in (["promote", *settings], ["deploy", *settings, "--model-data", second, "--poll-seconds", "0"]):
            if cli.main(argv, session=sess) != 0:
                return False, sess.api_calls, capsys.readouterr().err
    return True, sess.api_calls, ""


def test_golden_promote_and_deploy_run_with_exactly_the_release_policy_and_need_every_statement(
        aws, moto_server, tmp_path, capsys):
    policy = POLICIES["release"]
    ok, calls, err = release_scenario(aws, moto_server, tmp_path, capsys, policy)
    assert ok, err
    made = {f"{s}:{o}" for s, o, _ in calls}
    assert {"sagemaker:CreateTransformJob", "sagemaker:UpdateModelPackage", "sagemaker:CreateEndpoint",
            "scheduler:UpdateSchedule"} <= made, made
    assert [str(r) for r in denied(policy, requests(calls))] == []
    assert shape(requests(calls)) == []  # each ARN of a type AWS says its action takes
    found = sweep(policy, lambda less: release_scenario(aws, moto_server, tmp_path, capsys, less))
    print_sweep("release", found)
    assert all(found.values()), found
