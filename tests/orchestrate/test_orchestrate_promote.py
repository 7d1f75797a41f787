"""`orchestrate promote` on moto's SageMaker: every trained job becomes a pending model package;
the first is approved only when the golden set vouches for its verdicts, a worse candidate is
refused with the table and becomes Rejected with the reason, `--force` approves it and says so,
a better one wins; the incumbent is what the endpoint serves.

The golden scores come from the score cache promote keeps (by golden hash and model), filled
here from hand-made answers: this file tests the registry and the decision; the answers
themselves come from the audit's transform (tests/containers/test_promote_local.py), the
arithmetic from tests/orchestrate/test_review_promote_rules.py."""

from __future__ import annotations

import boto3
import pytest

from aws_helpers import ROLE_ARN
from bincounter.modelcard import ModelCard
from bincounter.reviews import HumanLabel, digest, write_labels
from orchestrate import cli
from orchestrate.review.golden_audit import ScoreCache, cache_key
from promote_helpers import CARD, SERVE_IMAGE, TRAIN_IMAGE, TRUTH, answers_right_on, open_card_tar, trained

pytestmark = pytest.mark.slow  # a moto server

SETTINGS = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "--set", "aws.stack=t1", "--set", f"images.serving_image={SERVE_IMAGE}",
            "--set", f"images.training_image={TRAIN_IMAGE}", "--set", "deploy.endpoint_name=t1-ep",
            "--set", "monitor.capture=false"]


@pytest.fixture
def stack(aws, tmp_path):
    boto3.client("s3").create_bucket(Bucket="models")
    golden = write_labels(tmp_path / "golden.manifest", [HumanLabel(f"s3://photos/images/{b}.jpg", str(c),
                                                                    expected_quantity=c) for b, c in TRUTH.items()])
    return golden, ScoreCache(str(tmp_path / "scores"))


def promote(aws, golden, cache, *args: str) -> int:
    return cli.main([*SETTINGS, "promote", "--golden", str(golden), "--scores", cache.where, *args], session=aws)


def packages(aws) -> list[dict]:
    sm = aws.client("sagemaker")
    summaries = sm.list_model_packages(ModelPackageGroupName="t1-models", SortBy="CreationTime",
                                       SortOrder="Ascending")["ModelPackageSummaryList"]
    return [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in summaries]


def test_the_first_is_approved_on_evidence_a_worse_one_becomes_rejected_force_is_recorded_a_better_wins(
        aws, stack, capsys):
    golden, cache = stack
    sha = digest(golden)
    first = trained(aws, CARD)
    cache.put(cache_key(sha, first), answers_right_on(60))
    assert promote(aws, golden, cache) == 0
    out = capsys.readouterr().out
    assert "approved: first model: on the 60 golden bins every verdict side it answers had the asks" in out
    [p1] = packages(aws)
    assert p1["ModelApprovalStatus"] == "Approved"
    assert p1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == first
    assert p1["CustomerMetadataProperties"]["golden_sha256"] == sha

    worse = trained(aws, CARD)
    cache.put(cache_key(sha, worse), answers_right_on(40))
    assert promote(aws, golden, cache) == 3
    out = capsys.readouterr().out
    assert "refused (the package is now Rejected): not better: on the same 60 golden bins the candidate alone " \
           "counts 0 right, the incumbent alone 20" in out
    assert "| accuracy | 66.7% | 100.0% |" in out  # the table, candidate beside incumbent
    assert "incumbent arn:aws:sagemaker" in out and "(no endpoint: the newest approved package)" in out
    rejected = packages(aws)[1]
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("not better: on the same 60 golden bins")
    # a rejected package is no candidate any more: nothing pending
    assert promote(aws, golden, cache) == 1
    assert "no pending model package" in capsys.readouterr().err

    assert promote(aws, golden, cache, "--candidate", rejected["ModelPackageArn"], "--force") == 0
    forced = packages(aws)[1]
    assert forced["ModelApprovalStatus"] == "Approved"
    assert forced["ApprovalDescription"].startswith("forced by promote --force; not better:")
    capsys.readouterr()

    better = trained(aws, CARD)
    cache.put(cache_key(sha, better), answers_right_on(58))  # 18 more right than the forced one
    assert promote(aws, golden, cache) == 0
    assert "approved: wins: on the same 60 golden bins the candidate alone counts 18 right" in capsys.readouterr().out
    assert [p["ModelApprovalStatus"] for p in packages(aws)] == ["Approved"] * 3
    # no endpoint in this stack: nothing was deployed
    assert not [c for c in aws.api_calls if c[1] == "CreateEndpointConfig"]


def test_a_first_model_on_a_golden_set_too_small_for_its_guarantee_is_refused_naming_the_n(aws, stack, capsys):
    golden, cache = stack
    strict = ModelCard.from_dict({**CARD.to_dict(), "verification": {
        **CARD.verification.to_dict(), "targets": {"max_false_match": 0.01, "max_false_mismatch": 0.05},
        "guarantee": "conformal", "confidence": 0.95}})
    artifact = trained(aws, strict)
    cache.put(cache_key(digest(golden), artifact), answers_right_on(60))
    assert promote(aws, golden, cache) == 3
    out = capsys.readouterr().out
    assert "the golden set is too small to vouch for its verdicts: `match` of expected count 1: 12 wrong asks, " \
           "needs 99" in out
    assert packages(aws)[0]["ModelApprovalStatus"] == "Rejected"


def test_the_incumbent_is_the_model_the_endpoint_serves(aws, stack, capsys):
    golden, cache = stack
    sha = digest(golden)
    approved = trained(aws, CARD)
    cache.put(cache_key(sha, approved), answers_right_on(40))
    assert promote(aws, golden, cache, "--force") == 0       # approved, no endpoint yet
    newer_approved = trained(aws, CARD)
    cache.put(cache_key(sha, newer_approved), answers_right_on(40))
    assert promote(aws, golden, cache, "--force") == 0
    # the endpoint serves the older approved model (deployed by hand): that one is the incumbent
    assert cli.main([*SETTINGS, "deploy", "--model-data", approved, "--poll-seconds", "0"], session=aws) == 0
    candidate = trained(aws, CARD)
    cache.put(cache_key(sha, candidate), answers_right_on(58))
    capsys.readouterr()
    assert promote(aws, golden, cache, "--no-deploy") == 0   # moto has no UpdateEndpoint
    out = capsys.readouterr().out
    arn_served = packages(aws)[0]["ModelPackageArn"]
    assert f"incumbent {arn_served} (the endpoint t1-ep serves it)" in out



def test_a_served_model_the_registry_does_not_hold_is_the_incumbent_all_the_same(aws, stack, capsys):
    golden, cache = stack
    sha = digest(golden)
    by_hand = "s3://models/exp1/output/by-hand/output/model.tar.gz"
    boto3.client("s3").put_object(Bucket="models", Key="exp1/output/by-hand/output/model.tar.gz",
                                  Body=open_card_tar(CARD))
    assert cli.main([*SETTINGS, "deploy", "--model-data", by_hand, "--poll-seconds", "0"], session=aws) == 0
    cache.put(cache_key(sha, by_hand), answers_right_on(58))
    candidate = trained(aws, CARD)
    cache.put(cache_key(sha, candidate), answers_right_on(40))
    capsys.readouterr()
    # without the endpoint this would be a first model, approved; against what is served it is worse
    assert promote(aws, golden, cache, "--no-deploy") == 3
    out = capsys.readouterr().out
    assert f"incumbent {by_hand} (the endpoint t1-ep serves {by_hand}, which no approved package of t1-models " \
           "holds" in out
    assert "not better: on the same 60 golden bins the candidate alone counts 0 right, the incumbent alone 18" in out


def test_promote_without_a_golden_set_says_how_to_make_one(aws, stack, capsys):
    trained(aws, CARD)
    assert cli.main([*SETTINGS, "promote"], session=aws) == 1
    assert "no golden set: make one with `orchestrate golden --from ...`" in capsys.readouterr().err
