"""report --rules: our debugger rules on a training job's real smdebug trial in (moto) S3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from bincounter.training.rules import RULES, evaluate_rules
from orchestrate import cli
from orchestrate.training import report
from orchestrate.training import jobs
from toolkit_helpers import ROOT

# smdebug's generated protobuf code is deprecated by protobuf 5+; not ours to fix
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"


def _job(aws, make_cfg, *overrides: str) -> dict:
    """A training job made by ``orchestrate train`` in moto (it stores the DebugHookConfig), described."""
    boto3.client("s3").create_bucket(Bucket="models")  # seeded by a client that is not recorded
    cfg = make_cfg(*overrides)
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    return aws.client("sagemaker").describe_training_job(TrainingJobName=name)


def _upload(folder: Path, uri: str) -> None:
    """What SageMaker does with the hook's LocalPath while the job runs."""
    s3 = boto3.client("s3")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    files = [f for f in folder.rglob("*") if f.is_file()]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: s3.upload_file(str(f), bucket, prefix + f.relative_to(folder).as_posix()), files))


def _debug_output(desc: dict) -> str:
    """Where SageMaker puts the tensors: <S3OutputPath>/<job>/debug-output/."""
    return f"{desc['DebugHookConfig']['S3OutputPath']}/{desc['TrainingJobName']}/debug-output/"


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "o.toml"
    path.write_text('[aws]\nstack = "t1"\n')
    return path


def test_report_rules_from_the_command_line_gives_the_verdicts_of_the_jobs_s3_trial_as_json(
        aws, make_cfg, diverging_trial, config):
    desc = _job(aws, make_cfg)
    _upload(diverging_trial, _debug_output(desc))
    # the real entry point in a fresh process, without the protobuf runtime chosen for it
    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    proc = subprocess.run([sys.executable, "-m", "orchestrate", "--config", str(config), "report",
                           "--training-job", desc["TrainingJobName"], "--rules", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads(proc.stdout)["evaluated_rules"]  # smdebug's own log lines kept off stdout
    assert evaluated["tensors"] == _debug_output(desc)
    verdicts = {r["rule"]: r for r in evaluated["rules"]}
    assert list(verdicts) == list(RULES)
    assert verdicts["LossNotDecreasing"]["status"] == "IssuesFound", verdicts["LossNotDecreasing"]
    assert verdicts["LossNotDecreasing"]["violations"] >= 1
    for verdict in verdicts.values():
        assert verdict["status"] in ("IssuesFound", "NoIssuesFound") and verdict["steps_checked"] > 0, verdict
    assert "rule LossNotDecreasing: IssuesFound" in proc.stderr  # the log
    assert f"debugger rules on {_debug_output(desc)}" in proc.stderr


def test_rules_read_from_s3_with_the_given_client_agree_with_the_local_trial_and_show_in_the_text(
        aws, make_cfg, diverging_trial, tmp_path):
    desc = _job(aws, make_cfg)
    _upload(diverging_trial, _debug_output(desc))
    # what SageMaker's managed rules write beside the tensors is not part of the trial
    boto3.client("s3").put_object(Bucket="models", Key=f"exp1/debug/{desc['TrainingJobName']}/rules/x.json",
                                  Body=b"{}")
    doc = report.training_report(desc)
    doc["evaluated_rules"] = report.evaluate_job_rules(aws.client("s3"), desc, tmp_path / "copy")
    local = {r["rule"]: r["status"] for r in evaluate_rules(str(diverging_trial))}
    assert {r["rule"]: r["status"] for r in doc["evaluated_rules"]["rules"]} == local
    copied = {p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("*") if p.is_file()}
    assert copied == {p.relative_to(diverging_trial) for p in diverging_trial.rglob("*") if p.is_file()}
    assert {"ListObjectsV2", "GetObject"} <= {op for service, op, _ in aws.api_calls if service == "s3"}
    text = report.render(doc)
    assert f"debugger rules evaluated on {_debug_output(desc)}:" in text
    assert re.search(r"^  rule LossNotDecreasing: IssuesFound \(\d+ violations in \d+ checks\) \S", text, re.M)
    assert len(re.findall(r"^  rule \w+: (IssuesFound|NoIssuesFound) \(", text, re.M)) == len(RULES)


def test_report_rules_on_a_job_without_a_debug_hook_is_an_error_naming_the_job(aws, make_cfg, config, capsys):
    name = _job(aws, make_cfg, "train.debug_hook=false")["TrainingJobName"]
    assert cli.main(["--config", str(config), "report", "--training-job", name, "--rules"], session=aws) == 1
    err = capsys.readouterr().err
    assert f"training job {name} has no DebugHookConfig" in err
    assert "Traceback" not in err


def test_report_rules_with_no_tensors_in_s3_is_an_error_naming_the_s3_uri(aws, make_cfg, config, capsys):
    desc = _job(aws, make_cfg)
    assert cli.main(["--config", str(config), "report", "--training-job", desc["TrainingJobName"], "--rules"],
                    session=aws) == 1
    err = capsys.readouterr().err
    assert f"no smdebug tensors found under {_debug_output(desc)} for training job" in err
    assert "Traceback" not in err
