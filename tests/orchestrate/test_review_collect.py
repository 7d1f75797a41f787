"""review import's reading of a Label Studio export, on hand-made exports: several annotators
merged by majority, cancelled answers skipped, unanswered tasks waiting, the summary's counts,
and a task that our export did not make named."""

from __future__ import annotations

import pytest

from bincounter.reviews import UNRESOLVED, LabelsError
from orchestrate.review.collect import labels_of


def ann(choice: str, user: int, cancelled: bool = False, at: str = "2026-12-03T10:00:00Z") -> dict:
    return {"id": user * 100, "completed_by": user, "was_cancelled": cancelled, "created_at": at,
            "result": [{"from_name": "count", "to_name": "photo", "type": "choices", "value": {"choices": [choice]}}]}


def task(i: int, expected: int, verdict: str, *annotations: dict) -> dict:
    return {"id": i, "data": {"source_ref": f"s3://p/images/{i}.jpg", "bin_id": str(i), "expected": expected,
                              "verdict": verdict}, "annotations": list(annotations)}


USERS = {1: "ann@w", 2: "bo@w", 3: "cy@w"}


def test_an_export_becomes_labels_by_majority_with_a_summary():
    export = [task(1, 3, "mismatch", ann("2", 1), ann("2", 2), ann("3", 3, at="2026-12-03T11:00:00Z")),
              task(2, 4, "review", ann("4", 1), ann("5", 2)),                    # a tie: unresolved
              task(3, 2, "mismatch", ann("2", 1), ann("5", 2, cancelled=True)),  # the record held
              task(4, 1, "review"),                                              # nobody answered yet
              task(5, 5, "review", ann("can't tell", 3))]
    labels, s = labels_of(export, USERS)
    by = {label.bin_id: label for label in labels}
    assert by["1"].choice == "2" and [v.annotator for v in by["1"].votes] == ["ann@w", "bo@w", "cy@w"]
    assert by["1"].time == "2026-12-03T11:00:00Z" and by["1"].expected_quantity == 3 and by["1"].verdict == "mismatch"
    assert by["2"].choice == UNRESOLVED and by["3"].choice == "2" and len(by["3"].votes) == 1
    assert "4" not in by
    assert (s.tasks, s.recounted, s.waiting, s.counted, s.unresolved, s.cant_tell) == (5, 4, 1, 2, 1, 1)
    assert (s.disagree_with_record, s.mismatch_counted, s.mismatch_confirmed) == (1, 2, 1)
    assert s.lines()[2] == "the record is wrong for 1 of the 2 counted; people confirmed 1 of the 2 the model called mismatch"


def test_a_task_our_export_did_not_make_is_named():
    export = [{"id": 9, "data": {"image": "x.jpg"}, "annotations": [ann("2", 1)]}]
    with pytest.raises(LabelsError, match="task 9 has no source_ref"):
        labels_of(export, USERS)
