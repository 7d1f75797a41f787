"""report: status, metrics, the spot saving; and how rejected requests surface."""

from __future__ import annotations

import json
import tarfile

import pytest

from bincounter.preprocess import PreprocessSpec
from orchestrate import cli
from orchestrate.core import costs
from orchestrate.training import report
from orchestrate.training import jobs
from orchestrate.core.store import split_s3

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"


def test_spot_saving_is_one_minus_billable_over_training_seconds():
    assert report.spot_saving(1921, 714) == 62.8  # the seed's figure
    assert report.spot_saving(1000, 1000) == 0.0
    assert report.spot_saving(None, None) is None
    assert report.spot_saving(0, 0) is None


def test_cost_per_million_checks_is_the_hourly_price_over_an_hours_images():
    # the figures: ml.m5.large at $0.115/h serving 50 and 144 img/s
    assert round(costs.cost_per_million(0.115, 50), 2) == 0.64
    assert round(costs.cost_per_million(0.115, 144), 2) == 0.22
    with pytest.raises(ValueError, match="img/s must be positive"):
        costs.cost_per_million(0.115, 0)


def test_serving_costs_price_every_measured_model_of_a_priced_instance_type():
    rows = costs.serving_costs({"ml.m5.large": 0.115, "ml.c5.large": 0.119},
                               {"ml.m5.large": {"fp32": 50.0, "int8": 144.0}, "ml.g4dn.xlarge": {"fp32": 400.0}})
    assert [(r["instance_type"], r["model"], r["usd_per_million"]) for r in rows] == [
        ("ml.m5.large", "fp32", 0.639), ("ml.m5.large", "int8", 0.222)]


@pytest.mark.slow
def test_report_of_a_training_job_shows_status_metrics_spot_saving_and_rule_results(aws, make_cfg):
    cfg = make_cfg()
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    desc = aws.client("sagemaker").describe_training_job(TrainingJobName=name)
    # moto runs nothing, so it reports no times and no rule results: add what SageMaker would.
    desc.update(TrainingTimeInSeconds=1921, BillableTimeInSeconds=714,
                FinalMetricDataList=[{"MetricName": "validation:accuracy", "Value": 0.5567}],
                DebugRuleEvaluationStatuses=[{"RuleConfigurationName": "LossNotDecreasing",
                                              "RuleEvaluationStatus": "NoIssuesFound"}])
    doc = report.training_report(desc)
    assert (doc["status"], doc["managed_spot"], doc["spot_saving_percent"]) == ("Completed", True, 62.8)
    text = report.render(doc)
    assert "training time: 1921 s, billable time: 714 s, spot saving: 62.8 %" in text
    assert "validation:accuracy = 0.5567" in text
    assert "rule LossNotDecreasing: NoIssuesFound" in text


@pytest.mark.slow
def test_report_command_says_n_a_while_sagemaker_has_reported_no_times(aws, make_cfg, tmp_path, capsys):
    cfg = make_cfg()
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    config = tmp_path / "o.toml"
    config.write_text('[aws]\nstack = "t1"\n[costs]\nhourly_usd = {"ml.m5.large" = 0.115}\n'
                      'img_per_s = {"ml.m5.large" = {fp32 = 50.0, int8 = 144.0}}\nmeasured = "here"\n')
    assert cli.main(["--config", str(config), "report"], session=aws) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"training job {name}: Completed")
    assert "spot saving: n/a" in out
    assert "serving cost (USD per million checks = hourly_usd / (img_per_s x 3600) x 1e6; rates measured here):" in out
    assert "  ml.m5.large int8: 144 img/s at $0.115/h -> $0.222 per million checks" in out


@pytest.mark.slow
def test_tuning_report_lists_every_job_best_first(aws, make_cfg):
    cfg = make_cfg()
    name = jobs.tune(aws, cfg, IMAGE)
    desc = aws.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)

    def job(n, value, **hps):
        metric = {} if value is None else {"FinalHyperParameterTuningJobObjectiveMetric": {
            "MetricName": "validation:accuracy", "Value": value}}
        return {"TrainingJobName": n, "TrainingJobStatus": "Completed" if value is not None else "Failed",
                "TunedHyperParameters": hps, **metric}

    # moto has no ListTrainingJobsForHyperParameterTuningJob: the jobs come in that reply's shape.
    listed = [job("j1", 0.31, lr="0.002"), job("j2", None, lr="0.09"), job("j3", 0.48, lr="0.01")]
    doc = report.tuning_report(desc, listed)
    assert doc["objective"] == "validation:accuracy (Maximize)"
    assert [r["training_job"] for r in doc["jobs"]] == ["j3", "j1", "j2"]
    lines = report.render(doc).splitlines()
    assert lines[3].split()[:3] == ["0.4800", "Completed", "j3"] and '{"lr": "0.01"}' in lines[3]
    assert lines[5].split()[:3] == ["n/a", "Failed", "j2"]


@pytest.mark.slow
def test_a_request_botocore_rejects_is_an_error_naming_the_parameter_and_is_not_sent(aws, make_cfg, tmp_path,
                                                                                       capsys):
    cfg = make_cfg()
    jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    config = tmp_path / "o.toml"
    config.write_text('[aws]\nrole_arn = "arn:aws:iam::123456789012:role/sm"\nstack = "t1"\n'
                      '[images]\nserving_image = "x"\n[deploy]\ninstance_count = 0\n')
    # data capture writes to the stack's bucket, which this config lacks: said before anything is created
    assert cli.main(["--config", str(config), "deploy"], session=aws) == 1
    assert "set aws.bucket, or deploy --no-capture" in capsys.readouterr().err
    assert "CreateModel" not in [op for _, op, _ in aws.api_calls]
    assert cli.main(["--config", str(config), "deploy", "--no-capture"], session=aws) == 1
    err = capsys.readouterr().err
    assert "Parameter validation failed" in err and "InitialInstanceCount" in err
    assert "CreateEndpointConfig" not in [op for _, op, _ in aws.api_calls]


@pytest.mark.slow
def test_report_of_a_training_job_flags_every_expected_count_above_its_target(aws, make_cfg, tmp_path, capsys):
    cfg = make_cfg()
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    desc = aws.client("sagemaker").describe_training_job(TrainingJobName=name)
    per = {str(c): {"false_match_rate": 0.0, "false_match_n": 700, "false_mismatch_rate": 0.01,
                    "false_mismatch_n": 400, "auto_share": 0.1} for c in range(1, 6)}
    per["1"].update(false_mismatch_rate=57 / 392, false_mismatch_n=392)  # the count 1
    card = {"schema_version": 3, "classes": [1, 2, 3, 4, 5], "arch": "resnet18",
            "preprocess": PreprocessSpec(112).to_dict(), "onnx": {"file": "model.onnx"},
            "verification": {"match_at": None, "mismatch_at": None,
                             "per_count": {str(c): {"match_at": 0.9, "mismatch_at": 0.05} for c in range(1, 6)},
                             "targets": {"max_false_match": 0.01, "max_false_mismatch": 0.05},
                             "promise": "per expected count, in expectation",
                             "measured": {"test": {"per_expected": per}}}}
    (tmp_path / "evaluation.json").write_text(json.dumps({"model": card}))
    with tarfile.open(tmp_path / "output.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "evaluation.json", arcname="evaluation.json")
    bucket, key = split_s3(report.output_uri(desc))
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("s3").upload_file(str(tmp_path / "output.tar.gz"), bucket, key)
    config = tmp_path / "o.toml"
    config.write_text('[aws]\nstack = "t1"\n')
    assert cli.main(["--config", str(config), "report", "--training-job", name], session=aws) == 0
    out = capsys.readouterr().out
    assert "verdicts (per expected count, in expectation): 1: match >= 0.9, mismatch <= 0.05;" in out
    assert "ABOVE TARGET on the test split: expected count 1: false mismatch 14.5 % (57 of 392;" in out
    assert out.count("ABOVE TARGET") == 1
    # a job whose output cannot be read still reports, and says why
    aws.client("s3").delete_object(Bucket=bucket, Key=key)
    assert cli.main(["--config", str(config), "report", "--training-job", name], session=aws) == 0
    out = capsys.readouterr().out
    assert f"verdicts: cannot read s3://{bucket}/{key}: An error occurred (NoSuchKey)" in out
