"""The labelling policy, least privilege by denial: `review export` of bins picked to teach (the
scoring pass reading the audited model from the stack's training output), `review export` of an
audit's recount list kept in S3 and `review import` uploading people's counts, against a real Label Studio, run as an IAM user
holding exactly that policy with moto's IAM enforcement on. Every recorded call is held
against the policy; each statement, removed, makes a command fail with AccessDenied. The
labelling commands hold no production right (no registry, no endpoint, no role to pass)."""

from __future__ import annotations

import json
import shutil

import boto3
import pytest

from aws_helpers import record
from iam_helpers import Request, denied, requests, shape
from iam_moto import enforced, principal, print_sweep, sweep
from iam_stack import stack_policies
from orchestrate import cli
from orchestrate.audit.join import Row
from orchestrate.audit.report import write_csv
from orchestrate.review.labelstudio import LabelStudio
from orchestrate.review.tasks import FROM_NAME, TO_NAME
from devtools.random_model import model_archive

pytestmark = pytest.mark.slow

POLICY = stack_policies()["labelling"]
MODEL_KEY = "exp1/output/train-1/output/model.tar.gz"  # where a training job of the stack leaves it
_rounds = iter(range(1000))


@pytest.fixture
def labelling(aws, moto_server, label_studio, synthetic_bins, random_model_dir, tmp_path, monkeypatch, capsys):
    """An audit of 4 bins to recount in the stack's bucket (photos under Label Studio's root);
    returns scenario(policy): export, a person answers, import, as a principal with ``policy``."""
    url, token, root = label_studio
    photos = root / "least-privilege" / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    metas = sorted((synthetic_bins / "metadata").glob("*.json"))[:4]
    rows = []
    for meta in metas:
        shutil.copy(synthetic_bins / "images" / f"{meta.stem}.jpg", photos)
        count = json.loads(meta.read_text())["EXPECTED_QUANTITY"]
        rows.append(Row(meta.stem, expected=count, counted=count, match_probability=0.4, confidence=0.6,
                        verdict="review"))
    write_csv(rows, tmp_path / "audit.csv", {r.bin_id: str(photos / f"{r.bin_id}.jpg") for r in rows})
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(tmp_path / "audit.csv"), "models", "exp1/audit/a1/audit.csv")
    s3.put_object(Bucket="models", Key=MODEL_KEY, Body=model_archive(random_model_dir))
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ls = LabelStudio(url, token)

    def scenario(policy: dict) -> tuple[bool, list, str]:
        project = f"least privilege {next(_rounds)}"
        settings = ["--set", "aws.bucket=models", "--set", "aws.prefix=exp1", "--set", "aws.stack=t1",
                    "--set", f"review.url={url}", "--set", f"review.local_root={root}",
                    "--set", f"review.project={project}"]
        sess = record(principal(policy, f"labeller-{project.split()[-1]}"))
        capsys.readouterr()
        with enforced(moto_server):
            if cli.main(["review", "export", *settings, "--audit", "s3://models/exp1/audit/a1", "--purpose", "training",
                         "--strategy", "typical", "--budget", "2", "--model", f"s3://models/{MODEL_KEY}"], session=sess):
                return False, sess.api_calls, capsys.readouterr().err
            if cli.main(["review", "export", *settings, "--audit", "s3://models/exp1/audit/a1"], session=sess):
                return False, sess.api_calls, capsys.readouterr().err
            for t in ls.tasks(ls.project(project, "<View/>")):   # the person (Label Studio's API, not AWS)
                ls.annotate(t["id"], [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                                       "value": {"choices": [str(t["data"]["expected"])]}}])
            if cli.main(["review", "import", *settings, "--out", str(tmp_path / project)], session=sess):
                return False, sess.api_calls, capsys.readouterr().err
        return True, sess.api_calls, ""
    return scenario


def test_export_and_import_run_with_exactly_the_labelling_policy_and_need_every_statement(labelling):
    ok, calls, err = labelling(POLICY)
    assert ok, err
    # HeadObject: the model's download asks its size first (IAM authorizes it as s3:GetObject)
    assert {f"{s}:{o}" for s, o, _ in calls} == {"s3:GetObject", "s3:HeadObject", "s3:PutObject"}
    assert [str(r) for r in denied(POLICY, requests(calls))] == []
    assert shape(requests(calls)) == []  # each ARN of a type AWS says its action takes
    found = sweep(POLICY, labelling)
    print_sweep("labelling", found)
    assert all(found.values()), found


def test_the_labelling_policy_grants_no_production_right():
    production = [Request("x", "sagemaker:UpdateEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/t1-ep"),
                  Request("x", "sagemaker:CreateModel", "arn:aws:sagemaker:us-east-1:123456789012:model/t1-m"),
                  Request("x", "sagemaker:UpdateModelPackage",
                          "arn:aws:sagemaker:us-east-1:123456789012:model-package/t1-models/1"),
                  Request("x", "iam:PassRole", "arn:aws:iam::123456789012:role/sm",
                          {"iam:PassedToService": "sagemaker.amazonaws.com"}),
                  Request("x", "s3:PutObject", "arn:aws:s3:::models/exp1/golden/golden.manifest")]
    assert len(denied(POLICY, production)) == len(production)
