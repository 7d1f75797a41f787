"""orchestrate audit against moto: the CreateModel / CreateTransformJob requests, then the
join and report from outputs a local run of the real server wrote into moto's S3."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from aws_helpers import ROLE_ARN

from bincounter.guarantees import miss_lines
from bincounter.modelcard import ModelCard
from devtools.local_serve import start_serve, stop
from devtools.random_model import model_archive
from orchestrate import cli
from orchestrate.audit import transform_local
from orchestrate.core.store import split_s3
from orchestrate.data import manifest
from orchestrate.core.aws import MANAGED_BY_KEY, STACK_KEY
from orchestrate.core.config import ConfigError

pytestmark = pytest.mark.slow  # a moto server per session, the session's trained model

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-serving:1.0"
MODEL_DATA = "s3://models/exp1/output/train-1/output/model.tar.gz"
SETTINGS = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "--set", "aws.stack=t1", "--set", f"images.serving_image={IMAGE}"]


def audit(aws, *args: str) -> int:
    return cli.main([*SETTINGS, "audit", "--poll-seconds", "0", *args], session=aws)


def sent(aws, op: str) -> list[dict]:
    return [params for _, name, params in aws.api_calls if name == op]


def truncated(jpeg: bytes) -> bytes:
    return jpeg[: len(jpeg) // 2]


@pytest.fixture
def bins(aws, source_bucket, trained_model) -> dict[str, bytes]:
    """The seeded public bucket plus a truncated photo (with metadata) and a photo without
    metadata; the session's model as a model.tar.gz in our bucket."""
    s3 = aws.client("s3")
    some = next(k for k in source_bucket if k.startswith("bin-images/"))
    extra = {"bin-images/99998.jpg": truncated(source_bucket[some]),
             "metadata/99998.json": json.dumps({"EXPECTED_QUANTITY": 2}).encode(),
             "bin-images/99999.jpg": source_bucket[some]}
    for key, body in extra.items():
        s3.put_object(Bucket="aft-vbi-pds", Key=key, Body=body, ACL="public-read")
    bucket, key = split_s3(MODEL_DATA)
    s3.put_object(Bucket=bucket, Key=key, Body=model_archive(trained_model))
    aws.api_calls.clear()
    return {**source_bucket, **extra}


def test_audit_creates_a_tagged_model_and_a_transform_job_reading_a_manifest_in_place(aws, bins, tmp_path):
    ids = sorted(Path(k).stem for k in bins if k.startswith("metadata/"))[:12]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    assert audit(aws, "--ids", str(ids_file), "--model-data", MODEL_DATA, "--out", str(tmp_path / "a")) == 0
    [model] = sent(aws, "CreateModel")
    assert model["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": MODEL_DATA, "Environment": {}}
    assert model["ExecutionRoleArn"] == ROLE_ARN
    [job] = sent(aws, "CreateTransformJob")
    base = f"s3://models/exp1/audit/{job['TransformJobName']}"
    assert job["ModelName"] == model["ModelName"]
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"{base}/images.manifest"}},
        "ContentType": "image/jpeg", "SplitType": "None", "CompressionType": "None"}
    assert job["TransformOutput"] == {"S3OutputPath": f"{base}/output/", "Accept": "application/json",
                                      "AssembleWith": "Line"}
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    # not configured: SageMaker takes them from the container's /execution-parameters
    assert not {"MaxConcurrentTransforms", "MaxPayloadInMB", "BatchStrategy"} & set(job)
    for request in (model, job):
        assert {t["Key"]: t["Value"] for t in request["Tags"]} == {MANAGED_BY_KEY: "orchestrate", STACK_KEY: "t1"}
    # the photos are read in place: their manifest names the public bucket; no photo is read or copied
    images = manifest.read(aws.client("s3"), f"{base}/images.manifest")
    assert (images.prefix, list(images.keys)) == ("s3://aft-vbi-pds/bin-images/", [f"{i}.jpg" for i in ids])
    assert not [p for _, op, p in aws.api_calls if "bin-images/" in str(p.get("Key", ""))]
    assert {p["Bucket"] for _, op, p in aws.api_calls if op in ("PutObject", "CopyObject")} == {"models"}
    # moto runs nothing: every photo is reported, as not answered
    summary = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert summary["photos"] == 12 and summary["verdicts"]["error"] == 12
    # a second audit of the same model reuses the model
    aws.api_calls.clear()
    assert audit(aws, "--ids", str(ids_file), "--model-data", MODEL_DATA, "--out", str(tmp_path / "b")) == 0
    assert sent(aws, "CreateModel") == [] and sent(aws, "CreateTransformJob")[0]["ModelName"] == model["ModelName"]


def test_configured_concurrency_payload_and_strategy_are_sent_and_a_bad_strategy_is_refused(aws, bins, tmp_path):
    args = ["--images", "s3://aft-vbi-pds/bin-images/", "--model-data", MODEL_DATA, "--out", str(tmp_path)]
    assert cli.main([*SETTINGS, "--set", "audit.max_concurrent_transforms=4", "--set", "audit.max_payload_mb=12",
                     "--set", "audit.batch_strategy=SingleRecord", "--set", "audit.instance_count=3",
                     "audit", "--poll-seconds", "0", *args], session=aws) == 0
    [job] = sent(aws, "CreateTransformJob")
    assert (job["MaxConcurrentTransforms"], job["MaxPayloadInMB"], job["BatchStrategy"]) == (4, 12, "SingleRecord")
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix",
                                                                   "S3Uri": "s3://aft-vbi-pds/bin-images/"}
    assert job["TransformResources"]["InstanceCount"] == 3
    assert cli.main([*SETTINGS, "--set", "audit.batch_strategy=MULTI_RECORD", "audit", *args], session=aws) == 1


def test_dry_run_prints_the_requests_and_sends_none(aws, bins, tmp_path, capsys):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00017\n00004\n")
    assert audit(aws, "--ids", str(ids_file), "--model-data", MODEL_DATA, "--dry-run") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["CreateTransformJob"]["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert printed["CreateModel (unless one exists)"]["PrimaryContainer"]["Image"] == IMAGE
    assert set(printed["PutObject"]) == {"images", "metadata"}
    assert not [op for _, op, _ in aws.api_calls if op.startswith(("Create", "Put"))]


def test_the_public_bucket_cannot_feed_a_job_in_another_region(aws, bins, capsys):
    code = cli.main([*SETTINGS, "--set", "aws.region=eu-west-1", "audit", "--images", "s3://aft-vbi-pds/bin-images/",
                     "--model-data", MODEL_DATA], session=aws)
    assert code == 1 and "us-east-1" in capsys.readouterr().err
    assert sent(aws, "CreateTransformJob") == []


def test_an_instance_type_without_a_price_is_refused_before_any_job(aws, bins, capsys):
    code = cli.main([*SETTINGS, "--set", "audit.instance_type=ml.c5.xlarge", "audit", "--images",
                     "s3://aft-vbi-pds/bin-images/", "--model-data", MODEL_DATA], session=aws)
    assert code == 1 and "no price for ml.c5.xlarge: add it to [costs] hourly_usd" in capsys.readouterr().err
    assert sent(aws, "CreateTransformJob") == [] and sent(aws, "CreateModel") == []


def test_outputs_a_local_run_wrote_into_s3_are_joined_into_the_report(aws, bins, trained_model, tmp_path):
    assert audit(aws, "--images", "s3://aft-vbi-pds/bin-images/", "--model-data", MODEL_DATA,
                 "--out", str(tmp_path / "first")) == 0
    [job] = sent(aws, "CreateTransformJob")
    name, output = job["TransformJobName"], job["TransformOutput"]["S3OutputPath"]
    # the local run: the real server in batch mode, driven as Batch Transform drives it
    s3 = aws.client("s3")
    photos = transform_local.top_level_photos(transform_local.materialize(
        s3, manifest.list_images(s3, "s3://aft-vbi-pds/bin-images/"), tmp_path / "photos"))
    with open(tmp_path / "serve.log", "wb") as log:
        proc, url = start_serve(trained_model, log, SAGEMAKER_BATCH="true")
        try:
            run = transform_local.run_attached(url, photos, tmp_path / "outputs")
        finally:
            stop(proc)
    assert run.description["TransformJobStatus"] == "Completed"  # batch mode answered every photo with a 200
    bucket, prefix = split_s3(output)
    for out in (tmp_path / "outputs").iterdir():  # under a subfolder, as the service may place them
        s3.upload_file(str(out), bucket, f"{prefix}bin-images/{out.name}")

    assert audit(aws, "--job", name, "--out", str(tmp_path / "report")) == 0
    rows = list(csv.DictReader((tmp_path / "report" / "audit.csv").open()))
    summary = json.loads((tmp_path / "report" / "audit.json").read_text())
    assert len(rows) == len(photos) == summary["photos"] == sum(summary["verdicts"].values())
    by_id = {r["bin_id"]: r for r in rows}
    assert by_id["99998"]["verdict"] == "error" and "truncated" in by_id["99998"]["error"]
    assert by_id["99998"]["expected"] == "2"
    assert by_id["99999"]["verdict"] == "no-expected-quantity"
    assert "s3://aft-vbi-pds/metadata/99999.json" in by_id["99999"]["error"] and by_id["99999"]["counted"]
    card = ModelCard.read(trained_model)
    labels = {Path(k).stem: json.loads(v)["EXPECTED_QUANTITY"] for k, v in bins.items() if k.startswith("metadata/")}
    for out in (tmp_path / "outputs").iterdir():
        sid, answer = out.name.split(".")[0], json.loads(out.read_text())
        row, expected = by_id[sid], labels.get(sid)
        if "error" in answer or expected is None:
            continue
        assert row["expected"] == str(expected) and row["counted"] == str(answer["count"])
        if expected in card.classes:
            p = answer["probabilities"][str(expected)]
            assert float(row["match_probability"]) == pytest.approx(p, abs=1e-6)
            assert row["verdict"] == card.verification.verdict(p, expected)  # its own count's pair
        else:  # the empty and 6+ bins: the model cannot verify them
            assert row["verdict"] == "not-verifiable" and str(expected) in row["error"]
    assert summary["verdicts"]["not-verifiable"] == sum(1 for q in labels.values() if q not in card.classes)
    recount = summary["recount"]
    assert [by_id[i]["verdict"] for i in recount] == sorted(by_id[i]["verdict"] for i in recount)  # mismatch first
    report = (tmp_path / "report" / "audit.md").read_text()
    for heading in ("## Verdicts", "## Operating point (model.json)", "## Recount first", "## Per expected quantity",
                    "## Failed photos (1)", "## No expected quantity (1)", "## Cost"):
        assert heading in report
    assert card.verification.describe() in report  # each count's thresholds
    verification = json.loads((trained_model / "model.json").read_text())["verification"]
    if "measured" in verification:  # the rates training measured travel into the report, unchanged
        test = verification["measured"]["test"]
        assert f"of {test['false_match_n']} wrong asks" in report and "answered without review" in report
        for line in miss_lines(test, verification["targets"]):  # and every count above its target
            assert line in report


def test_report_and_teardown_know_the_audits_job_and_model(aws, bins, tmp_path, capsys):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00017\n00004\n")
    assert audit(aws, "--ids", str(ids_file), "--model-data", MODEL_DATA, "--out", str(tmp_path / "a")) == 0
    [job], [model] = sent(aws, "CreateTransformJob"), sent(aws, "CreateModel")
    capsys.readouterr()
    assert cli.main([*SETTINGS, "report", "--transform-job", job["TransformJobName"]], session=aws) == 0
    shown = capsys.readouterr().out
    assert f"transform job {job['TransformJobName']}: Completed" in shown
    assert "1 x ml.m5.large" in shown and "images.manifest (ManifestFile)" in shown and "cost: $" in shown
    # moto finishes every job at once, so no audit is still running to be listed here
    assert cli.main([*SETTINGS, "teardown", "--dry-run"], session=aws) == 0
    assert f"would delete\tmodel\t{model['ModelName']}" in capsys.readouterr().out
    assert sent(aws, "ListTransformJobs")[0]["StatusEquals"] == "InProgress"


def test_a_local_audit_of_s3_photos_downloads_what_a_cloud_audit_would_read(aws, bins, make_cfg, tmp_path):
    from orchestrate.audit import inputs, run_local
    from orchestrate.core.aws import S3Clients

    cfg = make_cfg()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00017\n00004\n")
    clients = S3Clients.of_session(aws, cfg.data.source_bucket, cfg.data.source_region)
    req = inputs.Request(ids=str(ids_file), local=True, model_data="model.tar.gz")
    photos = inputs.resolve(req, cfg, clients)
    assert photos.metadata == "s3://aft-vbi-pds/metadata/"  # read in place, as the cloud audit's join does
    folder = run_local.photos_folder(photos, clients, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["00004.jpg", "00017.jpg"]
    assert (folder / "00017.jpg").read_bytes() == bins["bin-images/00017.jpg"]
    assert req == inputs.Request(ids=str(ids_file), local=True, model_data="model.tar.gz")  # nothing written back

    def no_client():
        pytest.fail("no S3 client is needed")

    offline = S3Clients(no_client, no_client, cfg.data.source_bucket)
    with pytest.raises(ConfigError, match="--images DIR"):
        inputs.resolve(inputs.Request(local=True, model_data="m"), cfg, offline)
    local = tmp_path / "zone" / "images"
    local.mkdir(parents=True)
    (tmp_path / "zone" / "metadata").mkdir()
    photos = inputs.resolve(inputs.Request(images=str(local), local=True, model_data="m"), cfg, offline)
    assert run_local.photos_folder(photos, offline, tmp_path) == local
    assert photos.metadata == str(tmp_path / "zone" / "metadata")  # ABID's layout: images/ beside metadata/
