"""deploy / invoke / lambda / teardown against moto."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from orchestrate import cli
from orchestrate.training import jobs
from orchestrate.core.aws import MANAGED_BY_KEY, STACK_KEY

pytestmark = pytest.mark.slow  # a moto server per session

ROOT = Path(__file__).resolve().parents[2]
TRAIN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0"
SERVE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-serving:1.0"


def _config(tmp_path: Path, stack: str = "t1", extra: str = "") -> str:
    path = tmp_path / f"{stack}.toml"
    path.write_text(f'[aws]\nrole_arn = "arn:aws:iam::123456789012:role/sm"\nbucket = "models"\nprefix = "exp1"\n'
                    f'stack = "{stack}"\n[images]\nserving_image = "{SERVE_IMAGE}"\n'
                    f'[deploy]\nendpoint_name = "{stack}-ep"\n[lambda]\nfunction_name = "{stack}-verify"\n'
                    f'source_dir = "{ROOT / "lambda"}"\npolicy_file = "{ROOT / "lambda" / "iam-policy.json"}"\n'
                    + extra)
    return str(path)


def _trained(aws, make_cfg, stack: str = "t1") -> str:
    cfg = make_cfg(stack=stack)
    name = jobs.train(aws, cfg, jobs.plan(cfg, TRAIN_IMAGE))
    return aws.client("sagemaker").describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_deploy_serves_the_latest_training_jobs_model_from_our_image_with_autoscaling(aws, make_cfg, tmp_path):
    model_data = _trained(aws, make_cfg)
    # A newer job whose name contains "t1" but whose stack tag differs: not ours. (moto ignores
    # ListTrainingJobs' SortOrder, so "newest of several of ours" cannot be shown here.)
    _trained(aws, make_cfg, stack="t1-other")
    args = ["--config", _config(tmp_path), "deploy", "--autoscaling-max", "3", "--poll-seconds", "0"]
    assert cli.main(args, session=aws) == 0
    sm = aws.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="t1-ep")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant, = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == SERVE_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    for arn in (endpoint["EndpointArn"], config["EndpointConfigArn"], model["ModelArn"]):
        assert _tags(sm, arn) == {MANAGED_BY_KEY: "orchestrate", STACK_KEY: "t1"}
    scaling = aws.client("application-autoscaling")
    target, = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        "endpoint/t1-ep/variant/AllTraffic", 1, 3)
    policy, = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == 70.0


def _endpoint_configs(aws) -> list[dict]:
    return [params for _, op, params in aws.api_calls if op == "CreateEndpointConfig"]


def test_deploy_captures_the_answers_as_json_by_default_and_not_with_no_capture(aws, make_cfg, tmp_path, capsys):
    _trained(aws, make_cfg, stack="cap")
    aws.api_calls.clear()
    assert cli.main(["--config", _config(tmp_path, "cap"), "deploy", "--poll-seconds", "0"], session=aws) == 0
    [sent] = _endpoint_configs(aws)  # as botocore validated it against SageMaker's API model
    assert sent["DataCaptureConfig"] == {
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://models/exp1/capture",
        "CaptureOptions": [{"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json", "application/jsonlines"]}}
    assert json.loads(capsys.readouterr().out)["capture"] == "s3://models/exp1/capture"
    stored = aws.client("sagemaker").describe_endpoint_config(EndpointConfigName=sent["EndpointConfigName"])
    assert stored["DataCaptureConfig"]["DestinationS3Uri"] == "s3://models/exp1/capture"  # moto 5.2 keeps it

    aws.api_calls.clear()
    # a new endpoint each time: moto has no UpdateEndpoint
    extra = "[monitor]\ncapture_input = true\nsampling_percentage = 5\n"
    model = ["--model-data", "s3://models/exp1/model.tar.gz", "--poll-seconds", "0"]
    assert cli.main(["--config", _config(tmp_path, "cap2", extra), "deploy", *model], session=aws) == 0
    [sent] = _endpoint_configs(aws)
    assert sent["DataCaptureConfig"]["CaptureOptions"] == [{"CaptureMode": "Output"}, {"CaptureMode": "Input"}]
    assert sent["DataCaptureConfig"]["InitialSamplingPercentage"] == 5

    aws.api_calls.clear()
    capsys.readouterr()
    assert cli.main(["--config", _config(tmp_path, "cap3"), "deploy", "--no-capture", *model], session=aws) == 0
    [sent] = _endpoint_configs(aws)
    assert "DataCaptureConfig" not in sent
    assert json.loads(capsys.readouterr().out)["capture"] == "off"


def test_deploy_without_a_trained_model_says_what_to_do(aws, tmp_path, capsys):
    assert cli.main(["--config", _config(tmp_path), "deploy"], session=aws) == 1
    assert "no completed training job of stack 't1'" in capsys.readouterr().err


def test_invoke_sends_the_image_to_the_endpoint(aws, make_cfg, tmp_path, capsys):
    # moto's server decodes every request body as UTF-8, so a JPEG cannot pass through it; the
    # serving contract's JSON form ({"image": base64}) can.
    image = tmp_path / "bin.json"
    image.write_text(json.dumps({"image": "/9j/4AAQSkZJRg=="}))
    assert cli.main(["--config", _config(tmp_path), "invoke", str(image), "--content-type", "application/json",
                     "--expected-quantity", "3"], session=aws) == 0
    sent, = [p for _, op, p in aws.api_calls if op == "InvokeEndpoint"]
    assert sent["Body"] == image.read_bytes() and sent["ContentType"] == "application/json"
    assert sent["CustomAttributes"] == "expected_quantity=3"
    # moto answers every InvokeEndpoint with this placeholder (docs/platform.md §4).
    assert capsys.readouterr().out.strip() == "body"


def test_lambda_creates_the_function_with_its_least_privilege_role_then_updates_it(aws, tmp_path):
    config = _config(tmp_path, extra='function_url_auth = "AWS_IAM"\n')
    assert cli.main(["--config", config, "lambda"], session=aws) == 0
    lam, iam = aws.client("lambda"), aws.client("iam")
    fn = lam.get_function(FunctionName="t1-verify")
    conf = fn["Configuration"]
    assert conf["Handler"] == "handler.lambda_handler" and conf["Runtime"] == "python3.11"
    assert conf["Environment"]["Variables"] == {"ENDPOINT_NAME": "t1-ep"}
    assert fn["Tags"] == {MANAGED_BY_KEY: "orchestrate", STACK_KEY: "t1"}
    code = lam.get_function(FunctionName="t1-verify")["Code"]
    assert code  # moto stores the zip; check what was sent instead
    sent, = [p for _, op, p in aws.api_calls if op == "CreateFunction"]
    names = zipfile.ZipFile(io.BytesIO(sent["Code"]["ZipFile"])).namelist()
    assert sorted(names) == ["handler.py", "lambda_events.py"]
    role = conf["Role"].rsplit("/", 1)[1]
    policy = iam.get_role_policy(RoleName=role, PolicyName="bincounter-lambda-least-privilege")["PolicyDocument"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"InvokeTheOneEndpoint", "WriteOwnLogs"}  # no S3 prefix configured
    assert statements["InvokeTheOneEndpoint"]["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/t1-ep"
    assert "{{" not in json.dumps(policy)
    assert lam.get_function_url_config(FunctionName="t1-verify")["AuthType"] == "AWS_IAM"

    assert cli.main(["--config", config, "--set", "deploy.endpoint_name=t1-ep2", "lambda"], session=aws) == 0
    assert lam.get_function(FunctionName="t1-verify")["Configuration"]["Environment"]["Variables"] == {
        "ENDPOINT_NAME": "t1-ep2"}
    assert [op for _, op, _ in aws.api_calls if op in ("CreateFunction", "UpdateFunctionCode")] == [
        "CreateFunction", "UpdateFunctionCode"]


def test_a_public_function_url_is_open_only_through_the_url(aws, tmp_path):
    config = _config(tmp_path, extra='function_url_auth = "NONE"\n')
    assert cli.main(["--config", config, "lambda"], session=aws) == 0
    lam = aws.client("lambda")
    assert lam.get_function_url_config(FunctionName="t1-verify")["AuthType"] == "NONE"
    grants = [p for _, op, p in aws.api_calls if op == "AddPermission"]
    assert [(g["Action"], g["Principal"]) for g in grants] == [("lambda:InvokeFunctionUrl", "*"),
                                                               ("lambda:InvokeFunction", "*")]
    assert grants[0]["FunctionUrlAuthType"] == "NONE" and grants[1]["InvokedViaFunctionUrl"] is True
    policy = json.loads(lam.get_policy(FunctionName="t1-verify")["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"public-function-url", "public-function-url-invoke"}

    # the URL switched to AWS_IAM: the statements that made it public go with it
    assert cli.main(["--config", config, "--set", "lambda.function_url_auth=AWS_IAM", "lambda"], session=aws) == 0
    assert lam.get_function_url_config(FunctionName="t1-verify")["AuthType"] == "AWS_IAM"
    assert [p["StatementId"] for _, op, p in aws.api_calls if op == "RemovePermission"] == [
        "public-function-url", "public-function-url-invoke"]
    try:
        left = json.loads(lam.get_policy(FunctionName="t1-verify")["Policy"])["Statement"]
    except lam.exceptions.ResourceNotFoundException:
        left = []
    assert not [s for s in left if s.get("Principal") == "*"]


def test_the_functions_role_trusts_lambda_for_this_account_only_and_a_foreign_role_is_never_taken_over(
        aws, tmp_path, capsys):
    iam = aws.client("iam")
    # someone else's role with the name orchestrate would use: refused, left as it was
    iam.create_role(RoleName="t1-verify-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                               "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    config = _config(tmp_path)
    assert cli.main(["--config", config, "lambda"], session=aws) == 1
    assert "role t1-verify-role exists and was not made by orchestrate for stack 't1'" in capsys.readouterr().err
    assert iam.list_role_policies(RoleName="t1-verify-role")["PolicyNames"] == []
    iam.delete_role(RoleName="t1-verify-role")
    assert cli.main(["--config", config, "lambda"], session=aws) == 0
    [trust] = iam.get_role(RoleName="t1-verify-role")["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_teardown_removes_exactly_what_orchestrate_created_and_dry_run_removes_nothing(
        aws, make_cfg, tmp_path, capsys):
    mine, other = _config(tmp_path, "t1"), _config(tmp_path, "t9")
    _trained(aws, make_cfg, "t1")
    _trained(aws, make_cfg, "t9")
    for config in (mine, other):
        assert cli.main(["--config", config, "deploy", "--autoscaling-max", "2", "--poll-seconds", "0"],
                        session=aws) == 0
        assert cli.main(["--config", config, "lambda"], session=aws) == 0
    sm, lam, iam = aws.client("sagemaker"), aws.client("lambda"), aws.client("iam")
    # Made by hand, untagged: never touched even if named like ours.
    sm.create_model(ModelName="t1-model-by-hand", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                    PrimaryContainer={"Image": SERVE_IMAGE})

    def inventory():
        return {"endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
                "configs": len(sm.list_endpoint_configs()["EndpointConfigs"]),
                "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
                "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
                "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
                "targets": sorted(t["ResourceId"] for t in aws.client("application-autoscaling")
                                  .describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"])}

    before = inventory()
    capsys.readouterr()
    assert cli.main(["--config", mine, "teardown", "--dry-run"], session=aws) == 0
    listed = capsys.readouterr().out.splitlines()
    assert inventory() == before
    kinds = sorted(line.split("\t")[1] for line in listed)
    assert kinds == ["endpoint", "endpoint-config", "iam-role", "lambda-function", "model", "scalable-target"]
    assert all(line.startswith("would delete\t") for line in listed)

    assert cli.main(["--config", mine, "teardown"], session=aws) == 0
    after = inventory()
    assert after["endpoints"] == ["t9-ep"]
    assert after["configs"] == 1
    assert [m for m in after["models"] if not m.startswith("t9-")] == ["t1-model-by-hand"]
    assert after["functions"] == ["t9-verify"]
    assert after["roles"] == ["t9-verify-role"]
    assert after["targets"] == ["endpoint/t9-ep/variant/AllTraffic"]
    assert cli.main(["--config", mine, "teardown", "--dry-run"], session=aws) == 0
    assert "nothing of stack 't1' to delete" in capsys.readouterr().out
