"""train / tune against moto: what lands in the emulated SageMaker is what we specified."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sagemaker_training import mapping

from bincounter.training.debugger import COLLECTIONS, HOOK_PARAMETERS
from bincounter.training.hyperparameters import PARAMS, Hyperparameters
from bincounter.training.metriclog import METRIC_DEFINITIONS
from orchestrate import cli
from orchestrate.training import jobs
from orchestrate.core.aws import MANAGED_BY_KEY, STACK_KEY

pytestmark = pytest.mark.slow  # a moto server per session

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
CHANNELS = {"training", "validation", "test"}


def _request(sess, op: str) -> dict:
    """The parameters of the one request ``op`` that passed botocore's validation and was sent."""
    sent = [params for _, name, params in sess.api_calls if name == op]
    assert len(sent) == 1, [name for _, name, _ in sess.api_calls]
    return sent[0]


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_train_creates_a_spot_job_with_our_image_hyperparameters_channels_checkpoints_and_hook(aws, make_cfg):
    cfg = make_cfg()
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE, {"epochs": 2}))
    sm = aws.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["HyperParameters"] == {"epochs": "2"}  # only what was set; the contract has the rest
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]} == {
        c: f"s3://models/exp1/channels/{c}/" for c in CHANNELS}
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://models/exp1/output"
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"] == {"S3Uri": f"s3://models/exp1/checkpoints/{name}",
                                       "LocalPath": "/opt/ml/checkpoints"}
    hook = job["DebugHookConfig"]
    assert hook["S3OutputPath"] == "s3://models/exp1/debug"  # SageMaker adds <job>/debug-output
    assert hook["HookParameters"] == HOOK_PARAMETERS
    assert {c["CollectionName"]: c["CollectionParameters"] for c in hook["CollectionConfigurations"]} == COLLECTIONS
    assert _tags(sm, job["TrainingJobArn"]) == {MANAGED_BY_KEY: "orchestrate", STACK_KEY: "t1"}
    # moto overwrites MetricDefinitions with its own, so check the request that was sent.
    sent = _request(aws, "CreateTrainingJob")
    assert sent["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert "DebugRuleConfigurations" not in sent and "ProfilerRuleConfigurations" not in sent


def test_a_default_changed_in_the_training_contract_is_what_the_cloud_job_runs(aws, make_cfg, monkeypatch):
    """orchestrate sends only what the user set; train.py in the job resolves the rest from
    the contract, so changing a default there changes the job, and a user's value still wins."""
    monkeypatch.setitem(PARAMS, "epochs", replace(PARAMS["epochs"], default=7))
    monkeypatch.setitem(PARAMS, "lr", replace(PARAMS["lr"], default=0.123))
    cfg = make_cfg("train.hyperparameters.lr=0.05")
    name = jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    sent = aws.client("sagemaker").describe_training_job(TrainingJobName=name)["HyperParameters"]
    assert sent == {"lr": "0.05"}
    # the toolkit turns the job's hyperparameters into train.py's flags, which the contract parses
    hp = Hyperparameters.parse(mapping.to_cmd_args(sent))
    assert hp.epochs == 7 and hp.lr == 0.05


def test_train_on_demand_has_no_spot_wait_or_checkpoints(aws, make_cfg):
    cfg = make_cfg("train.spot=false", "train.instance_count=2", "train.debug_hook=false")
    job = aws.client("sagemaker").describe_training_job(
        TrainingJobName=jobs.train(aws, cfg, jobs.plan(cfg, IMAGE)))
    assert job["EnableManagedSpotTraining"] is False
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert "CheckpointConfig" not in job and "DebugHookConfig" not in job
    assert job["ResourceConfig"]["InstanceCount"] == 2


def test_debugger_rules_are_sent_only_when_enabled(aws, make_cfg):
    cfg = make_cfg("train.debugger_rules=true")
    jobs.train(aws, cfg, jobs.plan(cfg, IMAGE))
    # moto drops ProfilerConfig / profiler rules, so check the request that was sent.
    sent = _request(aws, "CreateTrainingJob")
    rule, = sent["DebugRuleConfigurations"]
    assert rule["RuleConfigurationName"] == "LossNotDecreasing"
    assert rule["RuleParameters"]["rule_to_invoke"] == "LossNotDecreasing"
    assert rule["RuleEvaluatorImage"].endswith(".amazonaws.com/sagemaker-debugger-rules:latest")
    profiler, = sent["ProfilerRuleConfigurations"]
    assert profiler["RuleParameters"] == {"rule_to_invoke": "ProfilerReport"}
    assert sent["ProfilerConfig"]["S3OutputPath"].startswith("s3://models/exp1/profiler/")


def test_tune_searches_exactly_the_seed_ranges_for_validation_accuracy(aws, make_cfg):
    cfg = make_cfg("tune.max_jobs=6", "tune.max_parallel_jobs=3")
    name = jobs.tune(aws, cfg, IMAGE)
    sm = aws.client("sagemaker")
    desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    config = desc["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6
    assert config["ResourceLimits"]["MaxParallelTrainingJobs"] == 3
    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1",
                                       "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "3", "ScalingType": "Auto"}],
        "CategoricalParameterRanges": [{"Name": "batch-size", "Values": ["32", "64", "128"]}],
    }
    definition = desc["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert not definition.get("StaticHyperParameters")  # none set: the contract's defaults apply
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in definition["InputDataConfig"]} == {
        c: f"s3://models/exp1/channels/{c}/" for c in CHANNELS}
    assert definition["EnableManagedSpotTraining"] is True
    assert _tags(sm, desc["HyperParameterTuningJobArn"])[STACK_KEY] == "t1"


def test_tune_promote_trains_the_best_jobs_hyperparameters_with_the_image_from_ecr(aws, make_cfg, tmp_path,
                                                                                    push_training_image):
    image = push_training_image({"bincounter.pretrained-weights": "1",
                                 "bincounter.pretrained-archs": "resnet50 resnet18"}, tag="v7")
    config = tmp_path / "orchestrate.toml"
    config.write_text('[aws]\nrole_arn = "arn:aws:iam::123456789012:role/x"\nbucket = "models"\n'
                      'stack = "t2"\n[images]\ntag = "v7"\n')
    assert cli.main(["--config", str(config), "tune", "--promote", "--poll-seconds", "0"], session=aws) == 0
    sm = aws.client("sagemaker")
    tuning = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"][0]
    best = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"])["BestTrainingJob"]
    final, = [j for j in sm.list_training_jobs()["TrainingJobSummaries"] if "-final-" in j["TrainingJobName"]]
    job = sm.describe_training_job(TrainingJobName=final["TrainingJobName"])
    # moto reports a placeholder best job; whatever it reports is what gets promoted.
    assert job["HyperParameters"] == best["TunedHyperParameters"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == image


def test_train_reads_one_training_channel_from_a_manifest_over_the_public_bucket(aws, capsys,
                                                                                push_training_image):
    from orchestrate.data import manifest

    image = push_training_image({"bincounter.pretrained-weights": "1",
                                 "bincounter.pretrained-archs": "resnet50 resnet18"})
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="models")
    built = manifest.build("aft-vbi-pds", ["00004", "00017", "1000"])
    uri = manifest.upload(s3, {"training": built["training"]}, "models", "exp1/manifests/abid")["training"]
    settings = ["--set", "aws.role_arn=arn:aws:iam::123456789012:role/x", "--set", "aws.bucket=models",
                "--set", "aws.prefix=exp1", "--set", f"images.training_image={image}"]
    assert cli.main([*settings, "train", "--manifest", uri], session=aws) == 0
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=capsys.readouterr().out.strip())
    assert job["InputDataConfig"] == [{"ChannelName": "training", "DataSource": {"S3DataSource": {
        "S3DataType": "ManifestFile", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}]
    # the public bucket is in us-east-1: a job elsewhere could not read it, so none is started
    assert cli.main([*settings, "--set", "aws.region=eu-west-1", "train", "--manifest", uri], session=aws) == 1
    assert "eu-west-1" in capsys.readouterr().err
    assert len(aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 1


def test_a_calibration_prefix_becomes_its_own_channel_beside_a_manifest(aws, make_cfg):
    cfg = make_cfg()
    plan = jobs.plan(cfg, IMAGE, manifest_uri="s3://models/exp1/train.manifest",
                         calibration_uri="s3://models/exp1/recounted/")
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=jobs.train(aws, cfg, plan))
    sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in job["InputDataConfig"]}
    assert {name: (s["S3Uri"], s["S3DataType"]) for name, s in sources.items()} == {
        "training": ("s3://models/exp1/train.manifest", "ManifestFile"),
        "calibration": ("s3://models/exp1/recounted/", "S3Prefix")}
