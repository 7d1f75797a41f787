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

Training chooses the thresholds on the validation split to maximise the auto
share while both rates meet their targets at a one-sided upper confidence
bound (``choose_thresholds``), then measures every rate on the test split
(``measure``). numpy only: the server, the benchmarks and the docs use it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VERDICTS = ("match", "review", "mismatch")
# the guard against small samples: targets are met at this one-sided confidence
CONFIDENCE = 0.95
# thresholds are stored at this resolution, rounded away from the errors they guard
RESOLUTION = 1e-4
METHOD = ("thresholds chosen on the validation split to maximise the auto share while the "
          "one-sided 95 % Clopper-Pearson upper bound of each error rate meets its target")


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


def upper_bound(errors: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen as ``errors`` out of ``n``:
    the largest true rate that would show this few errors with probability 1 - confidence."""
    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    alpha, lo, hi = 1 - confidence, errors / n, 1.0
    for _ in range(60):  # bisection on the binomial CDF, which falls as the rate rises
        mid = (lo + hi) / 2
        if _binom_cdf(errors, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def allowed_errors(n: int, target: float, confidence: float = CONFIDENCE) -> int:
    """The most errors out of ``n`` whose upper bound still meets ``target``; -1 when even
    none would not (too few asks to vouch for the target)."""
    k = -1
    while k + 1 <= n and upper_bound(k + 1, n, confidence) <= target:
        k += 1
    return k


@dataclass(frozen=True)
class Choice:
    thresholds: Thresholds
    notes: tuple[str, ...] = ()


def choose_thresholds(asks: Asks, max_false_match: float, max_false_mismatch: float,
                      confidence: float = CONFIDENCE) -> Choice:
    """The thresholds with the largest auto share whose error rates on ``asks`` meet both
    targets at ``confidence``. A side whose target cannot be met never fires (None)."""
    wrong = np.sort(asks.p[asks.off == 1])[::-1]    # the highest p are the false matches
    correct = np.sort(asks.p[asks.off == 0])         # the lowest p are the false mismatches
    notes = []
    k = allowed_errors(len(wrong), max_false_match, confidence)
    if k < 0:
        match_at = None
        notes.append(f"max-false-match {max_false_match:g} cannot be met: {len(wrong)} wrong asks are too "
                     f"few to vouch for it at {confidence:.0%} confidence; `match` is never answered")
    elif k >= len(wrong):
        match_at = 0.0
    else:  # just above the (k+1)-th highest wrong ask: at most k wrong asks reach it
        match_at = min(1.0, math.floor(wrong[k] / RESOLUTION + 1) * RESOLUTION)
    j = allowed_errors(len(correct), max_false_mismatch, confidence)
    if j < 0:
        mismatch_at = None
        notes.append(f"max-false-mismatch {max_false_mismatch:g} cannot be met: {len(correct)} correct asks "
                     f"are too few to vouch for it at {confidence:.0%} confidence; `mismatch` is never answered")
    elif j >= len(correct):
        mismatch_at = 1.0
    else:  # just below the (j+1)-th lowest correct ask
        mismatch_at = math.ceil(correct[j] / RESOLUTION - 1) * RESOLUTION
        mismatch_at = None if mismatch_at < 0 else mismatch_at
    if match_at is not None and mismatch_at is not None and mismatch_at >= match_at:
        # both sides are safe over the whole overlap: one cut in its middle answers every ask
        cut = round((match_at + mismatch_at) / 2 / RESOLUTION) * RESOLUTION
        match_at, mismatch_at = max(cut, RESOLUTION), max(cut, RESOLUTION) - RESOLUTION
    return Choice(Thresholds(match_at, mismatch_at), tuple(notes))


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def measure(asks: Asks, thresholds: Thresholds) -> dict:
    """Every rate of the definitions above, each with its n."""
    verdicts = thresholds.verdicts(asks.p)
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
