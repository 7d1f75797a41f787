"""orchestrate data against a moto S3 seeded in the ABID layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from PIL import Image

from bincounter.split import stratified_split
from orchestrate import cli
from orchestrate.data import download

pytestmark = pytest.mark.slow  # a moto server per session

ROOT = Path(__file__).resolve().parents[2]


def _file_list(tmp_path: Path, objects: dict[str, bytes]) -> Path:
    """A Udacity-format list of every seeded bin, grouped by its metadata's count."""
    groups: dict[str, list[str]] = {}
    for key, body in objects.items():
        if key.startswith("metadata/"):
            qty = json.loads(body)["EXPECTED_QUANTITY"]
            groups.setdefault(str(qty), []).append(f"data/{key}")
    path = tmp_path / "file_list.json"
    path.write_text(json.dumps(groups))
    return path


def _expected_labels(objects: dict[str, bytes]) -> dict[str, int]:
    labels = {Path(k).stem: json.loads(b)["EXPECTED_QUANTITY"] for k, b in objects.items()
              if k.startswith("metadata/")}
    return {i: c for i, c in labels.items() if 1 <= c <= 5}


def _keys(bucket: str, prefix: str) -> set[str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _config(tmp_path: Path) -> str:
    path = tmp_path / "orchestrate.toml"
    path.write_text('[aws]\nbucket = "models"\n')
    return str(path)


def _args(tmp_path, flist):
    return ["--config", _config(tmp_path), "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "data", "--file-list", str(flist), "--local-dir", str(tmp_path / "abid")]


def test_data_downloads_splits_stratified_and_uploads_three_channels_and_manifest(aws, source_bucket, tmp_path):
    flist = _file_list(tmp_path, source_bucket)
    # From an earlier split with another seed: must not survive in a channel.
    boto3.client("s3").put_object(Bucket="models", Key="exp1/channels/test/images/00003.jpg", Body=b"old")
    assert cli.main(_args(tmp_path, flist), session=aws) == 0

    labels = _expected_labels(source_bucket)
    assert len(labels) == 100  # the 5 empty and 5 over-full bins are dropped
    split = stratified_split(labels, seed=0)
    channel = {"train": "training", "validation": "validation", "test": "test"}
    expected = {"exp1/channels/split.json"} | {
        f"exp1/channels/{channel[name]}/{sub}/{sid}.{ext}"
        for name, ids in split.items() for sid in ids for sub, ext in (("images", "jpg"), ("metadata", "json"))}
    assert _keys("models", "exp1/") == expected
    counts = {name: len(ids) for name, ids in split.items()}
    assert counts == {"train": 80, "validation": 10, "test": 10}
    manifest = json.loads(boto3.client("s3").get_object(Bucket="models", Key="exp1/channels/split.json")["Body"].read())
    assert {n: [e["id"] for e in manifest["splits"][n]] for n in split} == split
    assert manifest["counts"]["validation"] == {str(c): 2 for c in range(1, 6)}
    # Every uploaded image is the very object from the source bucket.
    some = split["test"][0]
    got = boto3.client("s3").get_object(Bucket="models", Key=f"exp1/channels/test/images/{some}.jpg")["Body"].read()
    assert got == source_bucket[f"bin-images/{some}.jpg"]


def test_data_resumes_after_an_interrupted_run_without_downloading_intact_files_again(aws, source_bucket, tmp_path):
    flist = _file_list(tmp_path, source_bucket)
    local = tmp_path / "abid"
    env = {**os.environ, "ORCHESTRATE_DATA_WORKERS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrate", *_args(tmp_path, flist)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(local.glob("*/*"))) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()  # SIGKILL: no clean-up code runs, as with a crash or a lost laptop lid
    proc.wait()
    kept = {p: p.stat() for p in local.glob("*/*") if not p.name.startswith(".")}
    assert 0 < len(kept) < len(source_bucket), "the run was not interrupted part-way"
    for p in kept:  # nothing half-written: every file in place is whole
        if p.suffix == ".json":
            json.loads(p.read_text())
        else:
            with Image.open(p) as im:
                im.load()

    assert cli.main(_args(tmp_path, flist), session=aws) == 0

    gets = [params["Key"] for service, op, params in aws.api_calls if op == "GetObject"]
    assert len(gets) == len(source_bucket) - len(kept)
    assert not {f"{'metadata' if p.suffix == '.json' else 'bin-images'}/{p.name}" for p in kept} & set(gets)
    for p, st in kept.items():  # untouched: same inode, same mtime
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not list(local.glob("*/.*.part-*"))
    assert len(list(local.glob("*/*"))) == len(source_bucket)


def test_data_names_each_bad_object_counts_them_and_writes_nothing_half(aws, source_bucket, tmp_path, capsys, caplog):
    flist = _file_list(tmp_path, source_bucket)
    s3 = boto3.client("s3")
    ids = sorted(_expected_labels(source_bucket))
    s3.delete_object(Bucket="aft-vbi-pds", Key=f"bin-images/{ids[0]}.jpg")
    s3.put_object(Bucket="aft-vbi-pds", Key=f"metadata/{ids[1]}.json", Body=b'{"EXPECTED_QUANTITY": 2,',
                  ACL="public-read")
    local = tmp_path / "abid"
    # A truncated file from some earlier, non-atomic copy: not intact, so fetched again.
    (local / "images").mkdir(parents=True)
    (local / "images" / f"{ids[2]}.jpg").write_bytes(source_bucket[f"bin-images/{ids[2]}.jpg"][:100])

    assert cli.main(_args(tmp_path, flist), session=aws) == 1
    err = capsys.readouterr().err
    assert "2 objects failed to download" in err
    logged = caplog.text
    assert f"s3://aft-vbi-pds/bin-images/{ids[0]}.jpg" in logged
    assert f"s3://aft-vbi-pds/metadata/{ids[1]}.json: metadata is not JSON" in logged
    assert not (local / "images" / f"{ids[0]}.jpg").exists()
    assert not (local / "metadata" / f"{ids[1]}.json").exists()
    assert (local / "images" / f"{ids[2]}.jpg").read_bytes() == source_bucket[f"bin-images/{ids[2]}.jpg"]
    assert not _keys("models", "exp1/"), "nothing is uploaded while downloads are missing"

    assert cli.main([*_args(tmp_path, flist), "--skip-failed"], session=aws) == 0
    uploaded = _keys("models", "exp1/channels/")
    assert not [k for k in uploaded if f"/{ids[0]}." in k or f"/{ids[1]}." in k]
    assert len(uploaded) == 2 * 98 + 1


def test_data_per_class_picks_that_many_bins_of_each_count(aws, source_bucket, tmp_path):
    args = ["--config", _config(tmp_path), "--set", "aws.bucket=models", "--set", "aws.prefix=p",
            "data", "--per-class", "4", "--local-dir", str(tmp_path / "abid")]
    assert cli.main(args, session=aws) == 0
    manifest = json.loads((tmp_path / "abid" / "split.json").read_text())
    totals = {c: sum(manifest["counts"][s].get(str(c), 0) for s in manifest["counts"]) for c in range(1, 6)}
    assert totals == {c: 4 for c in range(1, 6)}


def test_per_class_picking_parses_labels_with_the_core_parser(aws, source_bucket, caplog):
    """A ``true`` quantity is not count 1, and a quoted one is not a count: neither is picked."""
    s3 = boto3.client("s3")
    for key, qty in (("metadata/zz-true.json", "true"), ("metadata/zz-text.json", '"1"')):
        s3.put_object(Bucket="aft-vbi-pds", Key=key, Body=f'{{"EXPECTED_QUANTITY": {qty}}}'.encode(),
                      ACL="public-read")
    source = boto3.client("s3", config=Config(signature_version=UNSIGNED))
    picked = download.pick_per_class(source, "aft-vbi-pds", per_class=1000, workers=4)
    assert "zz-true" not in picked and "zz-text" not in picked
    assert len(picked) == 100  # the seeded bins of counts 1..5
    assert "zz-true.json: EXPECTED_QUANTITY is not a count: True" in caplog.text
