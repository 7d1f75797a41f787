"""`make sample` (devtools.sample) against the public bucket's stand-in in moto: the bins it
fetches are the bucket's own, resized like the shared copy, read by the metadata parser the
training contract uses; a second run fetches nothing; a run cut short resumes; a bin the bucket
lacks is named and fails the run."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from devtools import sample

pytestmark = pytest.mark.slow  # a moto server

IDS = ["00001", "00002", "00003", "00004", "00005", "00006"]


@pytest.fixture
def id_list(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# a few bins\n" + "\n".join(IDS) + "\n")
    return path


def test_fetched_bins_are_the_buckets_own_resized_and_the_parser_reads_every_one(
        aws, source_bucket, id_list, tmp_path, capsys):
    dest = tmp_path / "sample"
    assert sample.main(["--dest", str(dest), "--ids", str(id_list)]) == 0
    assert "6 bins fetched, 0 already there, 0 failed" in capsys.readouterr().out
    for sid in IDS:
        assert (dest / "metadata" / f"{sid}.json").read_bytes() == source_bucket[f"metadata/{sid}.json"]
        with Image.open(dest / "images" / f"{sid}.jpg") as im:
            assert (im.format, im.size) == ("JPEG", (224, 224))
    assert not (dest / sample.STAGING).exists()
    samples, report = scan_dataset(dest, CountRange(0, 200))
    assert {s.id: s.count for s in samples} == {
        sid: json.loads(source_bucket[f"metadata/{sid}.json"])["EXPECTED_QUANTITY"] for sid in IDS}
    assert report.skipped == []


def test_a_second_run_fetches_nothing_and_a_run_cut_short_resumes(aws, source_bucket, id_list, tmp_path, capsys):
    dest = tmp_path / "sample"
    assert sample.main(["--dest", str(dest), "--ids", str(id_list)]) == 0
    capsys.readouterr()
    assert sample.main(["--dest", str(dest), "--ids", str(id_list)]) == 0
    assert "all 6 bins are in" in capsys.readouterr().out
    # cut short: one bin's photo never converted, another's original downloaded but not yet converted
    (dest / "images" / "00002.jpg").unlink()
    (dest / "metadata" / "00005.json").unlink()
    staged = dest / sample.STAGING / "images"
    staged.mkdir(parents=True)
    (staged / "00005.jpg").write_bytes(source_bucket["bin-images/00005.jpg"])
    assert sample.main(["--dest", str(dest), "--ids", str(id_list)]) == 0
    assert "2 bins fetched, 4 already there, 0 failed" in capsys.readouterr().out
    assert all(sample.done(dest, sid) for sid in IDS)


def test_a_bin_the_bucket_lacks_is_named_and_fails_the_run_the_others_land(
        aws, source_bucket, id_list, tmp_path, capsys, caplog):
    id_list.write_text(id_list.read_text() + "99999\n")
    dest = tmp_path / "sample"
    assert sample.main(["--dest", str(dest), "--ids", str(id_list)]) == 1
    out = capsys.readouterr()
    assert "6 bins fetched, 0 already there, 1 failed" in out.out and "make sample` again" in out.err
    assert "aft-vbi-pds/metadata/99999.json" in caplog.text
    assert all(sample.done(dest, sid) for sid in IDS) and not sample.done(dest, "99999")
