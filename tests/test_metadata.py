"""Finding labelled bins on disk: the real sample, both layouts, bad files."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from bincounter.labels import CountRange
from bincounter.metadata import NoUsableDataError, read_expected_quantity, scan_dataset


def test_real_sample_yields_the_3310_images_its_metadata_puts_in_1_to_5(abid_sample, caplog):
    caplog.set_level(logging.INFO, logger="bincounter.metadata")
    expected = sum(1 for p in (abid_sample / "metadata").glob("*.json")
                   if 1 <= json.loads(p.read_text())["EXPECTED_QUANTITY"] <= 5)
    samples, report = scan_dataset(abid_sample)
    assert len(samples) == expected == 3310
    assert report.out_of_range[0] == 81 and sum(report.out_of_range.values()) == 4995 - 3310
    assert report.skipped == []
    assert "3310 usable, 1685 dropped as outside the count range" in caplog.text
    assert len({s.id for s in samples}) == 3310


def test_unpadded_ids_and_image_fname_files_are_read(abid_sample):
    samples, _ = scan_dataset(abid_sample, CountRange(0, 200))
    by_id = {s.id: s for s in samples}
    assert by_id["100"].image_path.name == "100.jpg" and by_id["100"].count == 0
    assert len(samples) == 4995


def _copy_some(src, dst, ids):
    (dst / "images").mkdir(parents=True)
    (dst / "metadata").mkdir()
    for i in ids:
        shutil.copy(src / "images" / f"{i}.jpg", dst / "images")
        shutil.copy(src / "metadata" / f"{i}.json", dst / "metadata")


def test_bad_files_are_skipped_with_a_warning_naming_each(synthetic_bins, tmp_path, caplog):
    root = tmp_path / "bins"
    _copy_some(synthetic_bins, root, [f"{i:05d}" for i in range(1, 11)])
    (root / "metadata" / "00001.json").write_text("{not json")
    (root / "metadata" / "00002.json").write_text(json.dumps({"BIN_FCSKU_DATA": {}}))
    (root / "images" / "00003.jpg").write_bytes(b"garbage, not a jpeg")
    (root / "images" / "00004.jpg").unlink()
    shutil.copy(root / "images" / "00005.jpg", root / "images" / "99999.jpg")  # no metadata
    caplog.set_level(logging.WARNING)
    samples, report = scan_dataset(root)
    assert len(samples) == 10 - 4
    skipped = {f.rsplit("/", 1)[1]: r for f, r in report.skipped}
    assert set(skipped) == {"00001.json", "00002.json", "00003.jpg", "00004.json", "99999.jpg"}
    assert "unreadable metadata JSON" in skipped["00001.json"]
    assert "no EXPECTED_QUANTITY" in skipped["00002.json"]
    assert "no image" in skipped["00004.json"]
    for name in skipped:
        assert name in caplog.text


def test_class_folder_layout_like_the_seed(synthetic_bins, tmp_path):
    root = tmp_path / "folders"
    for meta in sorted((synthetic_bins / "metadata").glob("*.json"))[:20]:
        count = read_expected_quantity(meta)
        (root / str(count)).mkdir(parents=True, exist_ok=True)
        shutil.copy(synthetic_bins / "images" / f"{meta.stem}.jpg", root / str(count))
    (root / "7").mkdir()
    shutil.copy(synthetic_bins / "images" / "00001.jpg", root / "7" / "77777.jpg")
    samples, report = scan_dataset(root)
    assert report.layout == "class-folders"
    assert len(samples) == 20 and report.out_of_range[7] == 1
    assert all(s.image_path.parent.name == str(s.count) for s in samples)


def test_nothing_usable_fails_with_the_reason(tmp_path):
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "1.json").write_text(json.dumps({"EXPECTED_QUANTITY": 9}))
    with pytest.raises(NoUsableDataError, match="1 dropped as outside the count range"):
        scan_dataset(tmp_path)
    with pytest.raises(NoUsableDataError, match="neither an ABID layout"):
        scan_dataset(tmp_path / "metadata")


def test_a_manifest_channel_in_the_buckets_own_layout_is_read(abid_sample, tmp_path):
    """A training manifest over s3://aft-vbi-pds/ delivers bin-images/<id>.jpg + metadata/<id>.json."""
    channel = tmp_path / "training"
    (channel / "bin-images").mkdir(parents=True)
    (channel / "metadata").mkdir()
    ids = ["00017", "100", "00004"]
    for i in ids:
        shutil.copy(abid_sample / "images" / f"{i}.jpg", channel / "bin-images")
        shutil.copy(abid_sample / "metadata" / f"{i}.json", channel / "metadata")
    samples, report = scan_dataset(channel, CountRange(0, 200))
    assert sorted(s.id for s in samples) == sorted(ids) and report.layout == "abid" and report.skipped == []
    assert {s.image_path.parent.name for s in samples} == {"bin-images"}
