"""orchestrate manifest against moto: manifests over the public bucket, nothing copied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrate import cli
from orchestrate.data import manifest
from orchestrate.core.ids import read_file_list

pytestmark = pytest.mark.slow  # a moto server per session

UDACITY = Path(__file__).resolve().parents[3] / "shared" / "data" / "udacity_file_list.json"


def _manifests(sess, prefix: str) -> dict[str, manifest.Manifest]:
    s3 = sess.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix=prefix).get("Contents", [])]
    return {Path(k).stem: manifest.read(s3, f"s3://models/{k}") for k in keys}


def test_a_udacity_file_list_becomes_manifests_of_its_keys_and_no_object_is_copied(aws, tmp_path, monkeypatch):
    if not UDACITY.is_file():
        pytest.skip(f"{UDACITY} not found (the shared data lives beside the repo)")
    aws.client("s3").create_bucket(Bucket="models")
    monkeypatch.chdir(tmp_path)
    aws.api_calls.clear()
    code = cli.main(["--set", "aws.bucket=models", "--set", "aws.prefix=exp1", "manifest",
                     "--file-list", str(UDACITY), "--name", "udacity", "--out", str(tmp_path / "m")], session=aws)
    assert code == 0
    # three PutObjects into our bucket and nothing else: no object of the dataset is read or copied
    assert [(op, p["Bucket"]) for _, op, p in aws.api_calls] == [("PutObject", "models")] * 3
    ids = read_file_list(UDACITY)
    assert len(ids) == 10_441
    got = _manifests(aws, "exp1/manifests/udacity/")
    assert set(got) == {"images", "metadata", "training"}
    assert got["images"].prefix == "s3://aft-vbi-pds/bin-images/"
    assert list(got["images"].keys) == [f"{i}.jpg" for i in ids]
    assert got["metadata"].prefix == "s3://aft-vbi-pds/metadata/"
    assert list(got["metadata"].keys) == [f"{i}.json" for i in ids]
    assert got["training"].prefix == "s3://aft-vbi-pds/"
    assert set(got["training"].keys) == {f"bin-images/{i}.jpg" for i in ids} | {f"metadata/{i}.json" for i in ids}
    # an unpadded id keeps its own name (the bucket holds 1000.jpg, not 01000.jpg)
    assert "1000.jpg" in got["images"].keys
    # the written files are SageMaker's format: [{"prefix": ...}, "key", ...]
    doc = json.loads((tmp_path / "m" / "images.manifest").read_text())
    assert doc[0] == {"prefix": "s3://aft-vbi-pds/bin-images/"} and doc[1:] == [f"{i}.jpg" for i in ids]


def test_a_listing_of_the_public_prefix_gives_images_and_their_metadata(aws, source_bucket):
    code = cli.main(["--set", "aws.bucket=models", "--set", "aws.prefix=exp1", "manifest",
                     "--listing", "s3://aft-vbi-pds/bin-images/"], session=aws)
    assert code == 0
    got = _manifests(aws, "exp1/manifests/abid/")
    images = sorted(k.removeprefix("bin-images/") for k in source_bucket if k.startswith("bin-images/"))
    assert list(got["images"].keys) == images
    assert list(got["metadata"].keys) == [k.replace(".jpg", ".json") for k in images]
    assert got["metadata"].prefix == "s3://aft-vbi-pds/metadata/"
    assert "training" not in got


@pytest.mark.parametrize("text, words", [
    ("not json", "not JSON"),
    ('{"prefix": "s3://b/"}', "expected"),
    ('[{"prefix": "s3://b/"}, 3]', "not keys"),
    ('[{"prefix": "s3://b/no-slash"}, "a.jpg"]', "must end with '/'"),
    ('[{"prefix": "http://b/"}, "a.jpg"]', "not an s3://"),
])
def test_a_malformed_manifest_is_refused_with_the_reason(text, words):
    with pytest.raises(manifest.ManifestError, match=words):
        manifest.Manifest.from_json(text)


def test_a_manifest_over_the_public_bucket_needs_a_job_in_its_region():
    m = manifest.build("aft-vbi-pds", ["00004"])["training"]
    manifest.check_region(m, "aft-vbi-pds", "us-east-1", "us-east-1")
    with pytest.raises(manifest.ManifestError, match="us-east-1.*eu-west-1.*orchestrate data"):
        manifest.check_region(m, "aft-vbi-pds", "us-east-1", "eu-west-1")
