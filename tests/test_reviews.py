"""The human-count contract (bincounter.reviews): the merge rule for several annotators,
the Ground Truth output-manifest shape, and a bad file named with its line."""

from __future__ import annotations

import json

import pytest

from bincounter.reviews import (CANT_TELL, CHOICES, MANY, UNRESOLVED, HumanLabel, LabelsError, Vote, digest,
                                merge, read_labels, write_labels)


def votes(*choices: str) -> list[Vote]:
    return [Vote(c, f"person{i}@warehouse") for i, c in enumerate(choices)]


@pytest.mark.parametrize("answers, merged", [
    (("3",), "3"),
    (("3", "3", "4"), "3"),                   # majority
    (("3", "4"), UNRESOLVED),                 # a tie stays unresolved
    (("3", "3", "4", "4", "5"), UNRESOLVED),  # a tie for the most, whatever else was said
    ((CANT_TELL, CANT_TELL, "2"), CANT_TELL), # most could not tell: the bin is "can't tell"
    (("2", CANT_TELL), UNRESOLVED),
    ((MANY,), MANY),
    ((), UNRESOLVED),                          # nobody answered
])
def test_several_annotators_merge_by_majority_and_a_tie_stays_unresolved(answers, merged):
    assert merge(votes(*answers)) == merged


def test_an_unknown_choice_is_refused_by_name():
    with pytest.raises(LabelsError, match="unknown choice '7' by ann@x"):
        Vote("7", "ann@x")


def test_a_line_has_ground_truths_image_classification_shape_and_reads_back(tmp_path):
    label = HumanLabel("s3://photos/bins/images/00042.jpg", "2", tuple(votes("2", "2", "3")),
                       expected_quantity=3, verdict="mismatch", time="2026-12-03T10:00:00Z")
    line = label.to_line()
    assert line["source-ref"] == "s3://photos/bins/images/00042.jpg" and line["bin-id"] == "00042"
    assert line["count"] == 2 and line["count-metadata"]["class-name"] == "2"
    assert line["count-metadata"]["human-annotated"] == "yes"
    assert line["count-metadata"]["type"] == "groundtruth/image-classification"
    assert line["count-metadata"]["job-name"] == "labeling-job/bincounter-review"
    assert line["count-metadata"]["annotators"] == ["person0@warehouse", "person1@warehouse", "person2@warehouse"]
    assert line["expected-quantity"] == 3 and line["verdict"] == "mismatch"
    path = write_labels(tmp_path / "labels.jsonl", [label])
    assert read_labels(path) == {"00042": label}
    # the class index is the choice's place in the labelling config: the count itself for 0..5
    assert [CHOICES.index(c) for c in CHOICES[:6]] == list(range(6))
    assert HumanLabel("x/1.jpg", MANY).count is None and HumanLabel("x/1.jpg", CANT_TELL).count is None


def test_a_bad_line_is_named_with_its_file_and_line(tmp_path):
    good = json.dumps(HumanLabel("images/1.jpg", "1").to_line())
    bad = json.dumps({"source-ref": "images/2.jpg", "count": 9, "count-metadata": {"class-name": "9"}})
    (tmp_path / "labels.jsonl").write_text(f"{good}\n\n{bad}\n")
    with pytest.raises(LabelsError, match=r"labels.jsonl:3: not a labels line"):
        read_labels(tmp_path / "labels.jsonl")
    (tmp_path / "labels.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(LabelsError, match=r"labels.jsonl:2"):
        read_labels(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelsError, match="no .jsonl or .manifest file"):
        read_labels(tmp_path / "empty")


def test_the_golden_digest_depends_on_the_labels_not_on_line_order(tmp_path):
    a = [HumanLabel(f"images/{i}.jpg", str(i % 5 + 1)) for i in range(10)]
    write_labels(tmp_path / "a.jsonl", a)
    write_labels(tmp_path / "b.jsonl", reversed(a))
    assert digest(tmp_path / "a.jsonl") == digest(tmp_path / "b.jsonl")
    write_labels(tmp_path / "c.jsonl", [*a[:-1], HumanLabel("images/9.jpg", "1")])
    assert digest(tmp_path / "c.jsonl") != digest(tmp_path / "a.jsonl")
