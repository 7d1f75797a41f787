"""What a verdict means and how often it is wrong: the definitions, written once.

A fulfilment system asks "does this bin hold N items?". An **ask** is a
(photo, expected quantity) pair. A **correct ask** expects the photo's labelled
count; a **wrong ask** expects a count one off (label ± 1 within the model's
counts: the common picking error); asks two off are reported on their own.

The model answers with p, its probability of exactly the expected count, and
the verdict is ``match`` when p >= ``match_at``, ``mismatch`` when
p <= ``mismatch_at``, ``review`` (a person looks) in between; a threshold of
None means that verdict is never given. The error rates:

- **false-match rate**: the share of wrong asks answered ``match``;
- **false-mismatch rate**: the share of correct asks answered ``mismatch``;
- **auto share**: the share of asks answered without ``review``, correct and
  wrong asks weighted equally (each half), overall and per expected count.

A ``VerdictRule`` holds a pair of thresholds per expected count (cards before
per-count thresholds have one pair for every count). Training chooses them on
the calibration split for the user's targets (``bincounter.guarantees``), then
measures every rate on the test split (``measure``). numpy only: the server,
the benchmarks and the docs use it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

VERDICTS = ("match", "review", "mismatch")


@dataclass(frozen=True)
class Thresholds:
    """``match`` when p >= match_at, ``mismatch`` when p <= mismatch_at, else ``review``."""
    match_at: float | None = 0.5
    mismatch_at: float | None = 0.1

    def __post_init__(self) -> None:
        for name in ("match_at", "mismatch_at"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1 (or null: never), got {value}")
        if self.match_at is not None and self.mismatch_at is not None and self.mismatch_at >= self.match_at:
            raise ValueError(f"need mismatch_at < match_at, got {self}")

    def verdict(self, p: float) -> str:
        if self.match_at is not None and p >= self.match_at:
            return "match"
        if self.mismatch_at is not None and p <= self.mismatch_at:
            return "mismatch"
        return "review"

    def verdicts(self, p: np.ndarray) -> np.ndarray:
        """``verdict`` over an array: "match" / "review" / "mismatch" per element."""
        out = np.full(p.shape, "review", dtype=object)
        if self.mismatch_at is not None:
            out[p <= self.mismatch_at] = "mismatch"
        if self.match_at is not None:
            out[p >= self.match_at] = "match"
        return out


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of every verdict: a pair per expected count (``per_count``), and the
    ``pooled`` pair for any count without its own (cards before per-count thresholds hold
    only that one pair, which every count then uses)."""
    pooled: Thresholds = Thresholds()
    per_count: tuple[tuple[int, Thresholds], ...] = ()

    @cached_property
    def by_count(self) -> dict[int, Thresholds]:
        # built once per rule: the server and the audit join look a count up for every answer
        return dict(self.per_count)

    def for_count(self, expected: int) -> Thresholds:
        return self.by_count.get(int(expected), self.pooled)

    def verdict(self, p: float, expected: int) -> str:
        return self.for_count(expected).verdict(p)

    def verdicts(self, p: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """``verdict`` over arrays of probabilities and expected counts."""
        out = self.pooled.verdicts(p)
        for count, pair in self.per_count:
            mine = expected == count
            out[mine] = pair.verdicts(p[mine])
        return out

    def replace_sides(self, match_at: float | None = None, mismatch_at: float | None = None) -> "VerdictRule":
        """Every pair with the sides given set to these values (an operator's override)."""
        sides = {k: v for k, v in (("match_at", match_at), ("mismatch_at", mismatch_at)) if v is not None}
        return VerdictRule(replace(self.pooled, **sides),
                           tuple((c, replace(t, **sides)) for c, t in self.per_count))

    def to_dict(self) -> dict:
        """model.json's threshold keys: ``match_at`` / ``mismatch_at`` (the pooled pair) and,
        for per-count rules, ``per_count`` {"3": {"match_at": .., "mismatch_at": ..}}."""
        out = {"match_at": self.pooled.match_at, "mismatch_at": self.pooled.mismatch_at}
        if self.per_count:
            out["per_count"] = {str(c): {"match_at": t.match_at, "mismatch_at": t.mismatch_at}
                                for c, t in self.per_count}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "VerdictRule":
        """The inverse of ``to_dict``; a missing pooled pair is the defaults of the first cards."""
        pooled = Thresholds(**{k: d[k] for k in ("match_at", "mismatch_at") if k in d})
        per_count = tuple(sorted((int(c), Thresholds(t["match_at"], t["mismatch_at"]))
                                 for c, t in (d.get("per_count") or {}).items()))
        return cls(pooled, per_count)

    def describe(self) -> str:
        """One line for logs and reports: the thresholds of each count."""
        def pair(t: Thresholds) -> str:
            return f"match >= {threshold_text(t.match_at)}, mismatch <= {threshold_text(t.mismatch_at)}"
        if not self.per_count:
            return pair(self.pooled)
        return "; ".join(f"{c}: {pair(t)}" for c, t in self.per_count)


def threshold_text(value: float | None) -> str:
    """A threshold as the cards and reports print it: "never" for a side that never fires."""
    return "never" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Asks:
    """Every ask made of a labelled set: the match probability p, the expected count, and
    how far the expectation is off the label (0: a correct ask; 1 or 2: a wrong one)."""
    p: np.ndarray
    expected: np.ndarray
    off: np.ndarray

    def where(self, mask: np.ndarray) -> "Asks":
        return Asks(self.p[mask], self.expected[mask], self.off[mask])


def make_asks(probabilities: np.ndarray, labels: np.ndarray, counts: list[int]) -> Asks:
    """For each image (a row of class ``probabilities``; its label a count of ``counts``):
    one correct ask, and the asks one and two off that stay within ``counts``."""
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    index = labels - counts[0]
    ps, expected, off = [], [], []
    for delta in (0, -1, 1, -2, 2):
        target = index + delta
        ok = (target >= 0) & (target < len(counts))
        ps.append(probabilities[ok, target[ok]])
        expected.append(target[ok] + counts[0])
        off.append(np.full(int(ok.sum()), abs(delta)))
    return Asks(np.concatenate(ps), np.concatenate(expected), np.concatenate(off))


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def measure(asks: Asks, rule: VerdictRule | Thresholds) -> dict:
    """Every rate of the definitions above, each with its n, every ask judged by the
    thresholds of its expected count."""
    rule = rule if isinstance(rule, VerdictRule) else VerdictRule(rule)
    verdicts = rule.verdicts(asks.p, asks.expected)
    correct, wrong, two_off = asks.off == 0, asks.off == 1, asks.off == 2

    def auto(mask_correct: np.ndarray, mask_wrong: np.ndarray) -> float | None:
        c, w = _share(verdicts[mask_correct] != "review"), _share(verdicts[mask_wrong] != "review")
        return None if c is None or w is None else (c + w) / 2

    out = {
        "false_match_rate": _share(verdicts[wrong] == "match"), "false_match_n": int(wrong.sum()),
        "false_mismatch_rate": _share(verdicts[correct] == "mismatch"), "false_mismatch_n": int(correct.sum()),
        "false_match_rate_two_off": _share(verdicts[two_off] == "match"), "false_match_two_off_n": int(two_off.sum()),
        "auto_share": auto(correct, wrong),
        "auto_share_correct": _share(verdicts[correct] != "review"),
        "auto_share_wrong": _share(verdicts[wrong] != "review"),
        "per_expected": {},
    }
    for count in np.unique(asks.expected):
        mine = asks.expected == count
        out["per_expected"][str(int(count))] = {
            "auto_share": auto(mine & correct, mine & wrong),
            "false_match_rate": _share(verdicts[mine & wrong] == "match"), "false_match_n": int((mine & wrong).sum()),
            "false_mismatch_rate": _share(verdicts[mine & correct] == "mismatch"),
            "false_mismatch_n": int((mine & correct).sum())}
    return out
