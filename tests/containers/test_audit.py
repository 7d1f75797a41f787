"""The audit with the serving image: ``orchestrate audit --local`` through the SageMaker
SDK's own local Batch Transform, and a local run writing into moto's S3 (compose's
``audit`` profile: test_compose.py, in the two-hosts project)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from aws_helpers import ROLE_ARN
from container_helpers import docker

from orchestrate import cli
from orchestrate.audit import transform_local
from orchestrate.data import manifest

pytestmark = [pytest.mark.container, pytest.mark.slow]


def containers_of(image: str) -> set[str]:
    return set(docker("ps", "--all", "--quiet", "--filter", f"ancestor={image}").stdout.split())


@pytest.fixture
def photos(synthetic_bins, tmp_path) -> Path:
    """40 synthetic bins in the ABID layout, a truncated photo (with metadata) and a photo
    without metadata."""
    root = tmp_path / "bins"
    (root / "images").mkdir(parents=True)
    (root / "metadata").mkdir()
    for meta in sorted((synthetic_bins / "metadata").glob("*.json"))[:40]:
        shutil.copy(meta, root / "metadata")
        shutil.copy(synthetic_bins / "images" / f"{meta.stem}.jpg", root / "images")
    some = next((root / "images").iterdir()).read_bytes()
    (root / "images" / "broken.jpg").write_bytes(some[: len(some) // 2])
    (root / "metadata" / "broken.json").write_text(json.dumps({"EXPECTED_QUANTITY": 3}))
    (root / "images" / "unlabelled.jpg").write_bytes(some)
    return root


def test_audit_local_runs_the_sdks_batch_transform_and_reports_every_photo(serving_image, trained_model,
                                                                          photos, tmp_path):
    before = containers_of(serving_image)
    out = tmp_path / "audit"
    code = cli.main(["--set", f"images.serving_image={serving_image}", "audit", "--local",
                     "--images", str(photos / "images"), "--model-data", str(trained_model), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "audit.json").read_text())
    assert summary["photos"] == 42 == sum(summary["verdicts"].values())
    assert summary["verdicts"]["error"] == 1 and summary["verdicts"]["no-expected-quantity"] == 1
    rows = {line.split(",")[0]: line for line in (out / "audit.csv").read_text().splitlines()[1:]}
    assert "truncated" in rows["broken"] and ",3,," in rows["broken"]
    assert "no metadata object" in rows["unlabelled"]
    # the SDK asked our /execution-parameters and sent one request per photo
    log = (out / "transform.log").read_text()
    assert "GET /execution-parameters" in log and len(re.findall(r"POST /invocations .* status=200", log)) == 42
    assert containers_of(serving_image) == before  # the SDK's serving container is gone


def test_a_local_run_writes_into_moto_s3_and_audit_joins_it(aws, serving_image, trained_model, photos, tmp_path):
    s3 = aws.client("s3")
    for bucket in ("models", "photos"):
        s3.create_bucket(Bucket=bucket)
    for path in (photos / "images").iterdir():
        s3.upload_file(str(path), "photos", f"zone-a/bin-images/{path.name}")
    for path in (photos / "metadata").iterdir():
        s3.upload_file(str(path), "photos", f"zone-a/metadata/{path.name}")
    model_data = "s3://models/exp1/model.tar.gz"
    shutil.make_archive(str(tmp_path / "model"), "gztar", trained_model)
    s3.upload_file(str(tmp_path / "model.tar.gz"), "models", "exp1/model.tar.gz")
    settings = ["--set", f"aws.role_arn={ROLE_ARN}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
                "--set", f"images.serving_image={serving_image}"]
    assert cli.main([*settings, "audit", "--images", "s3://photos/zone-a/bin-images/", "--model-data", model_data,
                     "--poll-seconds", "0", "--out", str(tmp_path / "first")]) == 0
    name = aws.client("sagemaker").list_transform_jobs()["TransformJobSummaries"][0]["TransformJobName"]
    output = aws.client("sagemaker").describe_transform_job(TransformJobName=name)["TransformOutput"]["S3OutputPath"]
    # the SDK's local mode reads the photos from moto's S3 and writes its outputs there
    # local mode's session has dummy keys; AWS_ENDPOINT_URL (moto) reaches its S3 clients too
    sess = transform_local.local_session("us-east-1", container_root=tmp_path / "work")
    run = transform_local.run_local(sess, job="local-into-s3", image=serving_image, model_dir=trained_model,
                                    input_uri="s3://photos/zone-a/bin-images/", output_uri=output)
    assert run.output_uri == f"{output.rstrip('/')}/local-into-s3/"  # the SDK appends the job name
    written = manifest.list_images(s3, "s3://photos/zone-a/bin-images/")
    outs = s3.list_objects_v2(Bucket="models", Prefix=manifest.split_s3(output)[1])["Contents"]
    assert len(outs) == len(written.keys) == 42

    assert cli.main([*settings, "audit", "--job", name, "--out", str(tmp_path / "report"), "--poll-seconds", "0"]) == 0
    summary = json.loads((tmp_path / "report" / "audit.json").read_text())
    assert summary["photos"] == 42 == sum(summary["verdicts"].values())
    assert summary["verdicts"]["error"] == 1 and summary["verdicts"]["no-expected-quantity"] == 1
    report = (tmp_path / "report" / "audit.md").read_text()
    assert "s3://photos/zone-a/metadata/unlabelled.json" in report  # metadata read in place beside the photos
