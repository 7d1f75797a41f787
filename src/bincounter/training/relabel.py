"""People's counts into a run: the ``labels`` channel replaces a bin's recorded count with
the count a person made; the ``golden`` channel's bins (the stack's fixed evaluation set)
never train, whichever channel brings them. Both channels hold ``bincounter.reviews`` files.
What was replaced, dropped and why goes into the model card's ``training.labels``."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from bincounter.labels import CountRange
from bincounter.metadata import Sample
from bincounter.reviews import MANY, digest, read_labels

log = logging.getLogger(__name__)


@dataclass
class Provenance:
    """How a run's labels came to be: the model card's ``training.labels``."""
    human_counts: int = 0          # training-channel bins that train with a person's count
    changed: int = 0               # ... of them, where it differs from the record's
    # ... of them by why a person counted the bin (bincounter.reviews.PURPOSES): both kinds
    # replace the count of a bin the training channel holds, unweighted, and neither brings a
    # bin in (not_in_channel): adding the recount list's bins cost 3.1 points, capped per count
    # 4.1 (bench-review's recounts arm, docs/reviews.md "Recount answers in training")
    by_purpose: dict = dataclasses.field(default_factory=dict)
    cant_tell: int = 0             # dropped: "can't tell" or unresolved (no count to train on)
    outside_range: int = 0         # dropped: a person's count outside the model's counts
    not_in_channel: int = 0        # labels for bins the training channel does not hold
    golden_dropped: int = 0        # golden-set bins found in a channel and left out of every split
    golden_sha256: str = ""
    golden_n: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def apply_labels(samples: list[Sample], labels_dir: Path, count_range: CountRange, outside: bool,
                 prov: Provenance, golden: frozenset[str] = frozenset()) -> list[Sample]:
    """``samples`` (scanned with every count) with each labelled bin's count replaced by the
    person's; bins a person could not count, or counted outside what the model trains on
    (``count_range``, or any count when ``outside``), are dropped and counted in ``prov``.
    Labels of ``golden`` bins are not counted here: those bins leave every split later."""
    labels = {k: v for k, v in read_labels(labels_dir).items() if k not in golden}
    out = []
    for s in samples:
        label = labels.get(s.id)
        if label is None:
            out.append(s)
            continue
        count = label.count
        if label.choice == MANY:  # above every count 0..5: the "more" class when those train
            count = max(count_range.max_count + 1, 6)
        if count is None:
            prov.cant_tell += 1
        elif not (outside or count_range.contains(count)):
            prov.outside_range += 1
        else:
            prov.human_counts += 1
            prov.by_purpose[label.purpose] = prov.by_purpose.get(label.purpose, 0) + 1
            prov.changed += count != s.count
            out.append(dataclasses.replace(s, count=count) if count != s.count else s)
    prov.not_in_channel = len(set(labels) - {s.id for s in samples})
    log.info("labels channel: %d bins train with a person's count (%d differ from the record); dropped %d "
             "that could not be counted and %d counted outside the model's counts; %d labels name bins "
             "the training channel does not hold", prov.human_counts, prov.changed, prov.cant_tell,
             prov.outside_range, prov.not_in_channel)
    return out


def golden_ids(golden_dir: Path, prov: Provenance) -> frozenset[str]:
    """The golden set's bin ids; its identity (sha256) and size go into ``prov``."""
    golden = frozenset(read_labels(golden_dir))
    prov.golden_sha256, prov.golden_n = digest(golden_dir), len(golden)
    return golden


def drop_golden(splits: dict[str, list[Sample]], golden: frozenset[str], prov: Provenance) -> None:
    """Every golden-set bin out of every split (in place): a model must never have seen the
    bins it is promoted on."""
    for name, samples in splits.items():
        kept = [s for s in samples if s.id not in golden]
        if len(kept) < len(samples):
            log.warning("golden set: %d of the %s split's bins are golden; they are left out",
                        len(samples) - len(kept), name)
            prov.golden_dropped += len(samples) - len(kept)
            splits[name] = kept
