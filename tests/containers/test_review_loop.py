"""The review loop on one machine, real parts throughout: compose's review profile (Label
Studio in its container, admin token from the environment) <- `review export` of a local
audit of synthetic bins whose records are a third wrong (the SDK's local transform) -> a
simulated annotator answers every task through Label Studio's API with the count the photo
shows -> `review import` -> `train --local --labels` (the fixed records counted on the card)
-> `promote --local` on a golden set (the registry is moto's): refused for want of evidence,
forced and recorded, then a random-weight candidate refused."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time

import pytest
from aws_helpers import ROLE_ARN
from container_helpers import ROOT, docker

from bincounter.reviews import HumanLabel, read_labels, write_labels
from bincounter.synth import generate
from devtools.local_serve import free_port
from orchestrate import cli
from orchestrate.core.aws import tags, unique_name
from orchestrate.review.labelstudio import LabelStudio
from orchestrate.review.tasks import FROM_NAME, TO_NAME

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture
def review_profile(labelstudio_image, tmp_path):
    """Label Studio from compose's review profile; photos under tmp_path/photos-root."""
    root = tmp_path / "photos-root"
    root.mkdir()
    token, port = secrets.token_hex(20), free_port()
    env = {**os.environ, "COMPOSE_PROJECT_NAME": f"bincounter-review-{os.getpid()}", "LABEL_STUDIO_API_KEY": token,
           "REVIEW_PHOTOS": str(root), "REVIEW_PORT": str(port)}
    compose = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "review"]
    try:
        subprocess.run([*compose, "up", "-d", "--no-build", "--wait", "labelstudio"], env=env, check=True,
                       capture_output=True, text=True, timeout=300)
        yield f"http://127.0.0.1:{port}", token, root
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], env=env, capture_output=True,
                       timeout=180)


def truth_of(bins) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["EXPECTED_QUANTITY"] for p in (bins / "metadata").glob("*.json")}


def registered_job(aws, model_tar) -> None:
    """A completed training job of the stack in moto whose artifact is ``model_tar`` (what
    SageMaker would have made; `train --local` makes no SageMaker job)."""
    sm = aws.client("sagemaker")
    name = unique_name("t1", "train")
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE_ARN, Tags=tags("t1"),
        AlgorithmSpecification={"TrainingImage": "bincounter-training:latest", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://models/exp1/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    artifact = sm.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    aws.client("s3").upload_file(str(model_tar), "models", artifact.split("/", 3)[3])
    time.sleep(0.01)  # job names are unique to the millisecond


def miscount(bins, every: int = 3) -> dict[str, int]:
    """Every ``every``-th bin's record moved one count off (the common picking error): the photo
    still shows the true count, which this returns for every bin."""
    truth = truth_of(bins)
    for i, (bin_id, count) in enumerate(sorted(truth.items())):
        if i % every == 0:
            path = bins / "metadata" / f"{bin_id}.json"
            meta = json.loads(path.read_text())
            meta["EXPECTED_QUANTITY"] = count + 1 if count < 5 else count - 1
            path.write_text(json.dumps(meta))
    return truth


def test_recounts_fix_the_records_the_model_trains_on_and_promote_decides_on_evidence(
        review_profile, aws, serving_image, training_image, trained_model, random_model_dir, tmp_path, capsys,
        monkeypatch):
    url, token, root = review_profile
    bins = generate(root / "shift", n=30, seed=3, size=64)
    truth = miscount(bins)       # a third of the records are wrong; people count what the photo shows
    records = truth_of(bins)
    settings = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
                "--set", "aws.stack=t1", "--set", f"images.serving_image={serving_image}",
                "--set", f"images.training_image={training_image}", "--set", f"review.url={url}",
                "--set", f"review.local_root={root}"]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)  # what review export/import read

    # a local audit of the shift's bins, then its recount list to Label Studio
    assert cli.main([*settings, "audit", "--local", "--images", str(bins / "images"), "--model-data",
                     str(trained_model), "--out", str(tmp_path / "audit")], session=aws) == 0
    assert cli.main([*settings, "review", "export", "--audit", str(tmp_path / "audit")], session=aws) == 0
    ls = LabelStudio(url, token)
    project = ls.project("t1 recounts", "<View/>")
    tasks = ls.tasks(project)
    assert tasks, "the audit sent nothing to recount"
    for t in tasks:  # the simulated annotator: the count the photo shows, not the record
        ls.annotate(t["id"], [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                               "value": {"choices": [str(truth[t["data"]["bin_id"]])]}}])
    assert cli.main([*settings, "review", "import", "--out", str(tmp_path / "review"), "--no-upload"],
                    session=aws) == 0
    labels = read_labels(tmp_path / "review" / "labels.jsonl")
    recounted = [t["data"]["bin_id"] for t in tasks]
    assert {i: label.count for i, label in labels.items()} == {i: truth[i] for i in recounted}
    fixed = sum(truth[i] != records[i] for i in recounted)
    assert fixed > 0, "no wrong record reached the recount list: the labels would change nothing"
    assert sum(label.count != label.expected_quantity for label in labels.values()) == fixed

    # training with people's counts (the SDK's local mode, our training image), at the default
    # targets (1 % false match, 5 % false mismatch)
    assert cli.main([*settings, "train", "--local", "--data", str(bins), "--labels", str(tmp_path / "review"),
                     "--local-root", str(tmp_path / "jobs"), "--hp", "epochs=2", "--hp", "image-size=64",
                     "--hp", "arch=resnet18", "--hp", "pretrained=false", "--hp", "batch-size=8",
                     "--hp", "num-workers=0"], session=aws) == 0
    [trained_tar] = list((tmp_path / "jobs").glob("*/compressed_artifacts/model.tar.gz"))
    with tarfile.open(trained_tar) as tar:
        card = json.loads(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("model.json"))).read())
    # the recounts changed what the model trained on: every fixed record, counted on its card
    assert card["training"]["labels"]["human_counts"] == len(labels)
    assert card["training"]["labels"]["changed"] == fixed

    # promote on a golden set of fresh bins. 30 bins of a weak model cannot vouch for a 1 % target
    # (a side needs 99 asks): the first model is refused with the n, and --force records the override
    gold = generate(root / "golden", n=30, seed=11, size=64)
    golden = write_labels(tmp_path / "golden.manifest", [
        HumanLabel(str(gold / "images" / f"{i}.jpg"), str(c), expected_quantity=c) for i, c in truth_of(gold).items()])
    aws.client("s3").create_bucket(Bucket="models")
    registered_job(aws, trained_tar)
    promote = [*settings, "promote", "--local", "--golden", str(golden), "--scores", str(tmp_path / "scores")]
    capsys.readouterr()
    code, out = cli.main(promote, session=aws), capsys.readouterr().out
    assert code == 3, out
    fires = [c for c, t in card["verification"].get("per_count", {}).items()
             if t["match_at"] is not None or t["mismatch_at"] is not None]
    assert ("the golden set is too small to vouch for its verdicts" if fires
            else "it answers every ask `review`") in out, out
    [package] = aws.client("sagemaker").list_model_packages(ModelPackageGroupName="t1-models")["ModelPackageSummaryList"]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert cli.main([*promote, "--candidate", package["ModelPackageArn"], "--force"], session=aws) == 0
    assert "approved: forced by promote --force" in capsys.readouterr().out
    # ...then a random-weight candidate against it: refused, with the table
    shutil.make_archive(str(tmp_path / "random"), "gztar", random_model_dir)
    registered_job(aws, tmp_path / "random.tar.gz")
    assert cli.main(promote, session=aws) == 3
    out = capsys.readouterr().out
    assert "refused (the package is now Rejected): not better" in out and "| accuracy |" in out


def test_the_label_studio_image_refuses_a_short_token_and_starts_from_its_migrated_database(labelstudio_image):
    short = docker("run", "--rm", "--network", "none", "-e", "LABEL_STUDIO_USER_TOKEN=" + "x" * 19,
                   labelstudio_image, check=False, timeout=60)
    assert short.returncode == 2 and "20 characters or more" in short.stderr
    # the migrated database is in the image, and nothing beside it (no shared secret key)
    found = docker("run", "--rm", "--network", "none", "--entrypoint", "ls", labelstudio_image, "-A",
                   "/opt/labelstudio-template").stdout.split()
    assert found == ["label_studio.sqlite3"]
