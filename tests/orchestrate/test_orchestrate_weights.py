"""No doomed first job: train / tune refuse, before anything bills, an image in ECR whose
labels do not promise the ImageNet weights the hyperparameters need (moto, with the
set-up's GetDownloadUrlForLayer; see conftest)."""

from __future__ import annotations

import pytest
from aws_helpers import ROLE_ARN, ops

from orchestrate import cli
from orchestrate.core.config import ConfigError
from orchestrate.core.image_weights import needed_arch, parse_ecr_uri

pytestmark = pytest.mark.slow  # a moto server per session

OFFLINE = {"bincounter.pretrained-weights": "0", "bincounter.pretrained-archs": "resnet50 resnet18"}
WITH_WEIGHTS = {"bincounter.pretrained-weights": "1", "bincounter.pretrained-archs": "resnet50 resnet18"}
ONLY_RESNET18 = {"bincounter.pretrained-weights": "1", "bincounter.pretrained-archs": "resnet18"}


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "orchestrate.toml"
    path.write_text(f'[aws]\nrole_arn = "{ROLE_ARN}"\nbucket = "models"\nstack = "t3"\n')
    return str(path)


def _run(config: str, aws, capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["--config", config, *args], session=aws)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("labels, hps, says", [
    (OFFLINE, [], "carries ImageNet weights for no arch (bincounter.pretrained-weights=0)"),
    (ONLY_RESNET18, [], "carries ImageNet weights for resnet18"),
    (None, ["--hp", "arch=resnet18"], "has no bincounter.pretrained-weights label"),
], ids=["offline build", "other arch", "unlabeled image"])
def test_train_is_refused_before_any_job_when_the_image_lacks_the_weights(
        aws, config, push_training_image, capsys, labels, hps, says):
    push_training_image(labels)
    code, err = _run(config, aws, capsys, "train", *hps)
    assert code == 1
    assert "refused before anything bills" in err and says in err, err
    assert "make images && make push" in err and "--hp pretrained=false" in err, err
    assert "sagemaker:CreateTrainingJob" not in ops(aws)
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} <= set(ops(aws))


@pytest.mark.parametrize("labels, hps", [(OFFLINE, ["--hp", "pretrained=false"]), (WITH_WEIGHTS, []),
                                         (ONLY_RESNET18, ["--hp", "arch=resnet18"])],
                         ids=["from scratch", "weights baked", "the arch baked"])
def test_train_starts_when_the_image_carries_what_the_job_needs(aws, config, push_training_image, capsys,
                                                                labels, hps):
    image = push_training_image(labels)
    code, err = _run(config, aws, capsys, "train", *hps)
    assert code == 0, err
    job, = aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    desc = aws.client("sagemaker").describe_training_job(TrainingJobName=job["TrainingJobName"])
    assert desc["AlgorithmSpecification"]["TrainingImage"] == image


def test_tune_is_refused_before_the_tuning_job(aws, config, push_training_image, capsys):
    push_training_image(OFFLINE)
    code, err = _run(config, aws, capsys, "tune")
    assert code == 1 and "refused before anything bills" in err, err
    assert "sagemaker:CreateHyperParameterTuningJob" not in ops(aws)


def test_an_image_missing_from_ecr_is_named_with_the_fix(aws, config, push_training_image, capsys):
    push_training_image(WITH_WEIGHTS, tag="v1")
    code, err = _run(config, aws, capsys, "--set", "images.tag=v2", "train")
    assert code == 1 and "bincounter-training:v2" in err and "make push" in err, err


def test_hyperparameters_the_training_contract_rejects_are_refused_before_billing():
    with pytest.raises(ConfigError, match="epochs"):
        needed_arch({"epochs": "three"})
    assert needed_arch({}) == "resnet50"  # the contract's defaults: resnet50, pretrained=true
    assert needed_arch({"arch": "resnet18", "pretrained": "false"}) is None


@pytest.mark.parametrize("uri, parsed", [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-training:1.0",
     ("123456789012", "bincounter-training", {"imageTag": "1.0"})),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/training",
     ("123456789012", "team/training", {"imageTag": "latest"})),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/t@sha256:abc",
     ("123456789012", "t", {"imageDigest": "sha256:abc"})),
])
def test_ecr_uris_name_registry_repository_and_image(uri, parsed):
    assert parse_ecr_uri(uri) == parsed
