"""The human-count contract: what a person answered for a bin, one JSON line per bin.

``labels.jsonl`` follows SageMaker Ground Truth's image-classification output manifest,
so a team that labels with Ground Truth writes the same file: the label attribute
``count`` holds the index of the chosen class in ``CHOICES`` (for "0".."5" the index is the
count itself) and ``count-metadata`` its ``class-name``, ``human-annotated``,
``creation-date``, ``type`` and ``job-name``; we add the annotators and their votes, the
record's ``expected-quantity`` and the model's ``verdict`` when the bin was sent for review.
A golden evaluation set is the same file (``human-annotated: "no"`` where the count is the
record's). Written by ``orchestrate review import``; read by training's ``labels`` and
``golden`` channels and by ``orchestrate promote``. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

# The labelling config's choices, in Ground Truth class-index order.
CHOICES = ("0", "1", "2", "3", "4", "5", "6 or more", "can't tell")
MANY, CANT_TELL = "6 or more", "can't tell"
# several annotators without a majority: written, never trained on
UNRESOLVED = "unresolved"
ATTRIBUTE = "count"
TYPE = "groundtruth/image-classification"
LABELS_FILE = "labels.jsonl"
# why a bin was put before a person: ``recount`` (the audit's recount list: fix the inventory) or
# ``training`` (picked by a strategy to teach the model); lines from before purposes are recounts
PURPOSES = ("recount", "training")


class LabelsError(ValueError):
    """A labels file or a vote that does not follow this contract: names the file and line."""


@dataclass(frozen=True)
class Vote:
    """One person's answer for one bin."""
    choice: str
    annotator: str
    time: str = ""

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise LabelsError(f"unknown choice {self.choice!r} by {self.annotator or 'an annotator'} "
                              f"(expected one of {', '.join(CHOICES)})")


def merge(votes: Sequence[Vote]) -> str:
    """The bin's answer: the choice most annotators made; a tie for the most is ``UNRESOLVED``
    (a person breaks it by answering again), no vote at all too. "can't tell" is a choice
    like the others: if most could not tell, the bin is "can't tell"."""
    tally = Counter(v.choice for v in votes).most_common()
    if not tally or (len(tally) > 1 and tally[0][1] == tally[1][1]):
        return UNRESOLVED
    return tally[0][0]


def bin_id(source_ref: str) -> str:
    """A photo's bin id: its file name without the extension (ABID's images/<id>.jpg)."""
    return PurePosixPath(source_ref.rstrip("/")).stem


@dataclass(frozen=True)
class HumanLabel:
    """One bin's answer: ``choice`` is one of ``CHOICES`` or ``UNRESOLVED``."""
    source_ref: str
    choice: str
    votes: tuple[Vote, ...] = ()
    expected_quantity: int | None = None
    verdict: str | None = None
    human: bool = True
    job: str = "bincounter-review"
    time: str = ""
    purpose: str = PURPOSES[0]
    strategy: str = ""            # the picking strategy of a ``training`` bin (orchestrate.review.picks)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise LabelsError(f"unknown purpose {self.purpose!r} (one of {', '.join(PURPOSES)})")

    @property
    def bin_id(self) -> str:
        return bin_id(self.source_ref)

    @property
    def count(self) -> int | None:
        """The counted items, or None ("6 or more", "can't tell", unresolved)."""
        return int(self.choice) if self.choice.isdigit() else None

    def to_line(self) -> dict:
        meta = {"class-name": self.choice, "human-annotated": "yes" if self.human else "no",
                "creation-date": self.time, "type": TYPE, "job-name": f"labeling-job/{self.job}",
                "annotators": sorted({v.annotator for v in self.votes}),
                "votes": [{"choice": v.choice, "annotator": v.annotator, "time": v.time} for v in self.votes]}
        return {"source-ref": self.source_ref, "bin-id": self.bin_id,
                ATTRIBUTE: CHOICES.index(self.choice) if self.choice in CHOICES else None,
                f"{ATTRIBUTE}-metadata": meta, "expected-quantity": self.expected_quantity,
                "verdict": self.verdict, "purpose": self.purpose, "strategy": self.strategy, **self.extra}

    @classmethod
    def from_line(cls, d: dict) -> HumanLabel:
        meta = d.get(f"{ATTRIBUTE}-metadata")
        if not isinstance(d.get("source-ref"), str) or not isinstance(meta, dict):
            raise LabelsError("expected 'source-ref' and 'count-metadata'")
        choice = meta.get("class-name")
        index = d.get(ATTRIBUTE)
        if choice != UNRESOLVED and (choice not in CHOICES or index != CHOICES.index(choice)):
            raise LabelsError(f"count {index!r} / class-name {choice!r} is not one of the choices")
        votes = tuple(Vote(v["choice"], v.get("annotator", ""), v.get("time", "")) for v in meta.get("votes", []))
        known = {"source-ref", "bin-id", ATTRIBUTE, f"{ATTRIBUTE}-metadata", "expected-quantity", "verdict",
                 "purpose", "strategy"}
        return cls(d["source-ref"], choice, votes, d.get("expected-quantity"), d.get("verdict"),
                   meta.get("human-annotated", "yes") == "yes",
                   str(meta.get("job-name", "")).removeprefix("labeling-job/") or "bincounter-review",
                   meta.get("creation-date", ""), d.get("purpose") or PURPOSES[0], d.get("strategy") or "",
                   {k: v for k, v in d.items() if k not in known})


def write_labels(path: Path, labels: Iterable[HumanLabel]) -> Path:
    """One line per bin, written to a temporary name first: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(label.to_line(), sort_keys=True) + "\n" for label in labels))
    tmp.replace(path)
    return path


def files(location: Path) -> list[Path]:
    """A labels file, or every ``*.jsonl`` / ``*.manifest`` in a folder (a channel)."""
    if location.is_file():
        return [location]
    found = sorted(p for p in location.rglob("*") if p.suffix in (".jsonl", ".manifest") and p.is_file())
    if not found:
        raise LabelsError(f"{location}: no .jsonl or .manifest file")
    return found


def read_labels(location: Path) -> dict[str, HumanLabel]:
    """{bin id: label} from a file or a folder. A line that breaks the contract is a
    ``LabelsError`` naming its file and line: a labels file is small and written by a tool,
    so a bad line means the wrong file, not one bad record to skip. A bin named twice keeps
    the later line (a re-import after more people answered)."""
    out: dict[str, HumanLabel] = {}
    for path in files(location):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            try:
                label = HumanLabel.from_line(json.loads(text))
            except (json.JSONDecodeError, LabelsError, KeyError, TypeError, AttributeError) as exc:
                raise LabelsError(f"{path}:{number}: not a labels line ({exc})") from exc
            out[label.bin_id] = label
    return out


def digest(location: Path) -> str:
    """sha256 of the labels' content in a stable order: the golden set's identity, whatever
    the file's line order or name."""
    lines = sorted(json.dumps(label.to_line(), sort_keys=True) for label in read_labels(location).values())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
