"""The golden set: made from people's counts (only bins with a count) or from a run's test
split (the record's counts, with where the photos are); its sha256 is its name."""

from __future__ import annotations

import json

import pytest

from bincounter.reviews import CANT_TELL, MANY, HumanLabel, LabelsError, digest, read_labels, write_labels
from orchestrate.core.config import ConfigError
from orchestrate.review import golden


def test_a_golden_set_from_people_keeps_only_bins_with_a_count(tmp_path):
    labels = [HumanLabel("s3://p/images/1.jpg", "3", expected_quantity=4), HumanLabel("s3://p/images/2.jpg", CANT_TELL),
              HumanLabel("s3://p/images/3.jpg", MANY), HumanLabel("s3://p/images/4.jpg", "0", expected_quantity=1)]
    write_labels(tmp_path / "labels.jsonl", labels)
    path, sha, n = golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g")
    assert n == 2 and path.name == "golden.manifest" and sha == digest(path)
    assert {k: v.count for k, v in read_labels(path).items()} == {"1": 3, "4": 0}


def test_a_golden_set_from_a_test_split_takes_the_records_counts_and_the_photos_place(tmp_path):
    split = {"splits": {"train": [{"id": "a", "count": 1}], "validation": [],
                        "test": [{"id": "b", "count": 2}, {"id": "c", "count": 5}]}}
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(ConfigError, match="needs --photos"):
        golden.make(tmp_path / "split.json", "", tmp_path / "g")
    path, _, n = golden.make(tmp_path / "split.json", "s3://photos/bin-images/", tmp_path / "g")
    got = read_labels(path)
    assert n == 2 and got["b"].source_ref == "s3://photos/bin-images/b.jpg" and got["c"].count == 5
    assert not got["b"].human and got["b"].expected_quantity == 2


def test_nothing_countable_is_not_a_golden_set(tmp_path):
    write_labels(tmp_path / "labels.jsonl", [HumanLabel("x/1.jpg", CANT_TELL)])
    with pytest.raises(LabelsError, match="no bin with a count"):
        golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g")
