"""`orchestrate promote --local`: the golden bins through the serving image under the SDK's
local transform (the audit's own steps), the score kept, and not computed again for the same
golden set and model. The registry is moto's."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from aws_helpers import ROLE_ARN

from bincounter.reviews import HumanLabel, write_labels
from bincounter.synth import generate
from orchestrate import cli
from orchestrate.core.config import load

pytestmark = [pytest.mark.container, pytest.mark.slow]


def test_promote_local_scores_the_golden_bins_through_the_serving_image_once(aws, serving_image, trained_model,
                                                                            tmp_path, capsys):
    from orchestrate.training import jobs

    bins = generate(tmp_path / "golden-bins", n=30, seed=7, size=64)  # bins the model never saw
    golden = write_labels(tmp_path / "golden.manifest", [
        HumanLabel(str(p), str(json.loads((bins / "metadata" / f"{p.stem}.json").read_text())["EXPECTED_QUANTITY"]))
        for p in sorted((bins / "images").glob("*.jpg"))])
    aws.client("s3").create_bucket(Bucket="models")
    settings = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
                "--set", "aws.stack=t1", "--set", f"images.serving_image={serving_image}",
                "--set", f"images.training_image={serving_image}"]
    cfg = load(None, env={}, overrides=[s for s in settings if s != "--set"])
    name = jobs.train(aws, cfg, jobs.plan(cfg, serving_image))
    artifact = aws.client("sagemaker").describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    shutil.make_archive(str(tmp_path / "model"), "gztar", trained_model)
    aws.client("s3").upload_file(str(tmp_path / "model.tar.gz"), "models", artifact.split("/", 3)[3])

    args = [*settings, "promote", "--local", "--golden", str(golden), "--scores", str(tmp_path / "scores")]
    code = cli.main(args, session=aws)
    out = capsys.readouterr().out
    assert code in (0, 3), out  # approved, or refused with the table: either is a decision
    assert "| bins | 30 |" in out and re.search(r"\| accuracy \| \d+\.\d% \|", out), out
    [kept] = list((tmp_path / "scores").rglob("*.json"))
    score = json.loads(kept.read_text())
    assert score["n"] == 30 and score["failed"] == 0 and len(score["correct"]) == 30
    # the same golden set and model: the kept score, no second transform
    assert cli.main(args, session=aws) == code
    assert "candidate: scored on this golden set before" in capsys.readouterr().out
