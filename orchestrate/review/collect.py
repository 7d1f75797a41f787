"""`review import`'s steps: the project's export -> one ``HumanLabel`` per answered bin (the
annotators' votes merged by ``bincounter.reviews.merge``) -> labels.jsonl and a summary.

Nothing is written until every annotation has been read: an annotation with a choice the
labelling config does not have stops the import with its task named, and no file is half
written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bincounter.reviews import (CANT_TELL, LABELS_FILE, PURPOSES, UNRESOLVED, HumanLabel, LabelsError, Vote, merge,
                                write_labels)
from orchestrate.review.tasks import FROM_NAME

SUMMARY_FILE = "labels-summary.json"


@dataclass
class Summary:
    """What people's recounts said, in a few numbers (labels-summary.json)."""
    tasks: int = 0
    recounted: int = 0            # bins with at least one answer
    waiting: int = 0              # tasks nobody has answered yet
    counted: int = 0              # ... with a count (0-5)
    many: int = 0                 # "6 or more"
    cant_tell: int = 0
    unresolved: int = 0           # annotators disagree without a majority
    disagree_with_record: int = 0  # a count that differs from the record's EXPECTED_QUANTITY
    mismatch_counted: int = 0     # the model said mismatch, and a person counted the bin
    mismatch_confirmed: int = 0   # ... and the person's count differs from the record too

    def lines(self) -> list[str]:
        confirmed = (f"{self.mismatch_confirmed} of the {self.mismatch_counted} the model called mismatch"
                     if self.mismatch_counted else "no mismatch verdict among them")
        return [f"recounted: {self.recounted} of {self.tasks} bins ({self.waiting} waiting for a person)",
                f"counts: {self.counted} counted 0-5, {self.many} six or more, {self.cant_tell} can't tell, "
                f"{self.unresolved} unresolved (annotators disagree)",
                f"the record is wrong for {self.disagree_with_record} of the {self.counted + self.many} counted; "
                f"people confirmed {confirmed}"]


def _choice(annotation: dict, task_id) -> str | None:
    for item in annotation.get("result", []):
        if item.get("from_name") == FROM_NAME and item.get("type") == "choices":
            chosen = item.get("value", {}).get("choices", [])
            if len(chosen) != 1:
                raise LabelsError(f"task {task_id}: annotation {annotation.get('id')} chose {chosen!r}, not one choice")
            return chosen[0]
    return None


def labels_of(export: list[dict], users: dict[int, str]) -> tuple[list[HumanLabel], Summary]:
    """Every answered task's label, in task order, and the summary."""
    out, summary = [], Summary(tasks=len(export))
    for task in export:
        votes = []
        for a in task.get("annotations", []):
            if a.get("was_cancelled"):
                continue
            choice = _choice(a, task.get("id"))
            if choice is None:
                continue
            by = a.get("completed_by")
            who = by.get("email", "") if isinstance(by, dict) else users.get(by, str(by))
            try:
                votes.append(Vote(choice, who, a.get("created_at", "")))
            except LabelsError as exc:
                raise LabelsError(f"task {task.get('id')} (bin {task['data'].get('bin_id')}): {exc}") from None
        if not votes:
            summary.waiting += 1
            continue
        data = task["data"]
        if not data.get("source_ref"):
            raise LabelsError(f"task {task.get('id')} has no source_ref: not made by `review export` "
                              "(this project's tasks must come from it)")
        try:
            label = HumanLabel(data["source_ref"], merge(votes), tuple(votes), data.get("expected"), data.get("verdict"),
                               time=max(v.time for v in votes), purpose=data.get("purpose") or PURPOSES[0],
                               strategy=data.get("strategy") or "")
        except LabelsError as exc:
            raise LabelsError(f"task {task.get('id')} (bin {data.get('bin_id')}): {exc}") from None
        out.append(label)
        _tally(summary, label)
    return out, summary


def _tally(s: Summary, label: HumanLabel) -> None:
    s.recounted += 1
    if label.choice == CANT_TELL:
        s.cant_tell += 1
        return
    if label.choice == UNRESOLVED:
        s.unresolved += 1
        return
    if label.count is None:
        s.many += 1
    else:
        s.counted += 1
    wrong = label.expected_quantity is not None and label.count != label.expected_quantity
    s.disagree_with_record += wrong
    if label.verdict == "mismatch":
        s.mismatch_counted += 1
        s.mismatch_confirmed += wrong


def write(out: Path, labels: list[HumanLabel], summary: Summary, project: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"labels": write_labels(out / LABELS_FILE, labels), "summary": out / SUMMARY_FILE}
    paths["summary"].write_text(json.dumps({"project": project, **asdict(summary)}, indent=1), encoding="utf-8")
    return paths
