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
    # the first model of a 30-bin tiny run, on 30 golden bins: refused, and the reason it gives is
    # what the kept score shows (a rate above the card's target, or too few asks for its guarantee)
    assert code == 3, out
    assert "| bins | 30 |" in out and re.search(r"\| accuracy \| \d+\.\d% \|", out), out
    [kept] = list((tmp_path / "scores").rglob("*.json"))
    score = json.loads(kept.read_text())
    targets = json.loads((trained_model / "model.json").read_text())["verification"]["targets"]
    [why] = [line for line in out.splitlines() if line.startswith("refused (the package is now Rejected): ")]
    rates = score["rates"]
    if "miss their targets" in why:
        assert (rates["false_match_rate"] or 0) > targets["max_false_match"] or \
            (rates["false_mismatch_rate"] or 0) > targets["max_false_mismatch"], why
    elif "too small to vouch" in why:
        named = re.findall(r"(\d+) (?:wrong|correct) asks, needs (\d+)", why)
        assert named and all(int(n) < int(need) for n, need in named), why
    else:
        assert "answers every ask `review`" in why, why
    assert score["n"] == 30 and score["failed"] == 0 and len(score["correct"]) == 30
    # every golden bin asked its count and each count one off: 30 correct asks and their wrong ones
    assert score["rates"]["false_mismatch_n"] == 30 and score["rates"]["false_match_n"] >= 30
    # the same golden set and model: the kept score, no second transform (the candidate is now
    # Rejected, so it is named)
    [package] = aws.client("sagemaker").list_model_packages(ModelPackageGroupName="t1-models")["ModelPackageSummaryList"]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert cli.main([*args, "--candidate", package["ModelPackageArn"]], session=aws) == code
    assert "candidate: scored on this golden set before" in capsys.readouterr().out
