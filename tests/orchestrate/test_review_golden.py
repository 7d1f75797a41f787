"""The golden set: a held-out share of people's counts (only bins with a count; the rest written
for training, never both) or a run's test split (the record's counts, with where the photos
are); its sha256 is its name."""

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
    made = golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g", holdout=1.0)
    assert made.n == 2 and made.path.name == "golden.manifest" and made.sha256 == digest(made.path)
    assert {k: v.count for k, v in read_labels(made.path).items()} == {"1": 3, "4": 0}
    # what is not golden still trains: can't tell and 6+ are the labels channel's to count and drop
    assert set(read_labels(made.rest)) == {"2", "3"}


def test_a_held_out_share_of_each_count_is_golden_and_the_rest_trains_never_both(tmp_path):
    labels = [HumanLabel(f"s3://p/images/{c}{i:02d}.jpg", str(c)) for c in range(1, 6) for i in range(20)]
    labels += [HumanLabel("s3://p/images/x.jpg", CANT_TELL)]
    write_labels(tmp_path / "labels.jsonl", labels)
    made = golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g", holdout=0.3, seed=0)
    held, rest = read_labels(made.path), read_labels(made.rest)
    assert (made.n, made.rest_n) == (30, 71)
    assert not set(held) & set(rest) and set(held) | set(rest) == {g.bin_id for g in labels}
    assert {c: sum(g.count == c for g in held.values()) for c in range(1, 6)} == {c: 6 for c in range(1, 6)}
    # the same bins on every run and whatever the file's order; another seed picks others
    write_labels(tmp_path / "reversed.jsonl", labels[::-1])
    again = golden.make(tmp_path / "reversed.jsonl", "", tmp_path / "g2", holdout=0.3, seed=0)
    assert set(read_labels(again.path)) == set(held)
    other = golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g3", holdout=0.3, seed=1)
    assert set(read_labels(other.path)) != set(held)
    with pytest.raises(ConfigError, match="--holdout 0"):
        golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g4", holdout=0)


def test_a_golden_set_from_a_test_split_takes_the_records_counts_and_the_photos_place(tmp_path):
    split = {"splits": {"train": [{"id": "a", "count": 1}], "validation": [],
                        "test": [{"id": "b", "count": 2}, {"id": "c", "count": 5}]}}
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(ConfigError, match="needs --photos"):
        golden.make(tmp_path / "split.json", "", tmp_path / "g")
    made = golden.make(tmp_path / "split.json", "s3://photos/bin-images/", tmp_path / "g")
    got = read_labels(made.path)
    assert made.n == 2 and made.rest is None and got["b"].source_ref == "s3://photos/bin-images/b.jpg" and got["c"].count == 5
    assert not got["b"].human and got["b"].expected_quantity == 2


def test_nothing_countable_is_not_a_golden_set(tmp_path):
    write_labels(tmp_path / "labels.jsonl", [HumanLabel("x/1.jpg", CANT_TELL)])
    with pytest.raises(LabelsError, match="no bin with a count"):
        golden.make(tmp_path / "labels.jsonl", "", tmp_path / "g")
