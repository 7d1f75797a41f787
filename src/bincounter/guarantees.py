"""How verdict thresholds are chosen from error-rate targets: the guarantee types.

A threshold is placed so that at most ``k`` of the ``n`` calibration asks on its
side would be wrongly answered (``place_match`` / ``place_mismatch``); the
guarantee type decides ``k`` (``allowed``):

- ``conformal`` (class-conditional split-conformal, per expected count): ``k + 1 =
  floor(target * (n + 1))``. For exchangeable calibration and live asks, each
  count's error rate is at most its target **in expectation over calibration
  sets**; one trained model's rate can be above it (a draw of a few hundred
  calibration photos can land it at two or three times the target).
- ``upper-bound`` (per expected count): the most errors whose one-sided
  Clopper-Pearson upper bound at ``confidence`` still meets the target. This is
  the training-conditional (PAC) form of the same conformal rule: the rate of the
  model at hand is within its target with that confidence, and it needs more
  asks before a side can fire.
- ``pooled``: the upper-bound rule over all expected counts at once, one pair of
  thresholds (the rule before per-count thresholds; its promise holds only on
  the calibration split's mix of expected quantities).

A side that its count's asks cannot vouch for never fires (``None``: ``review``),
and the notes say how many asks it would need (``min_asks``). numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bincounter.verification import Asks, Thresholds, VerdictRule

GUARANTEES = ("conformal", "upper-bound", "pooled")
# the guard against small samples of upper-bound and pooled: targets met at this one-sided confidence
CONFIDENCE = 0.95
# thresholds are stored at this resolution, rounded away from the errors they guard
RESOLUTION = 1e-4
METHODS = {
    "conformal": "per expected count, class-conditional split-conformal: each side at the "
                 "floor(target x (n + 1))-th most extreme calibration ask of its count; each count's "
                 "rate is within its target in expectation over calibration sets",
    "upper-bound": "per expected count, the thresholds with the largest auto share whose one-sided "
                   "{confidence:.0%} Clopper-Pearson upper bound meets each target (training-conditional: "
                   "within target for this model with {confidence:.0%} confidence)",
    "pooled": "one pair for every expected count, with the largest auto share whose one-sided "
              "{confidence:.0%} Clopper-Pearson upper bound meets each target over all asks pooled",
}
# what each guarantee promises, in words an operations lead reads on the card and in reports
PROMISES = {
    "conformal": "per expected count, in expectation",
    "upper-bound": "per expected count, with {confidence:.0%} confidence",
    "pooled": "over all asks pooled, with {confidence:.0%} confidence",
}


def method(guarantee: str, confidence: float = CONFIDENCE) -> str:
    return METHODS[guarantee].format(confidence=confidence)


def promise(guarantee: str, confidence: float = CONFIDENCE) -> str:
    return PROMISES[guarantee].format(confidence=confidence)


def upper_bound(errors: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen as ``errors`` out of ``n``:
    the largest true rate that would show this few errors with probability 1 - confidence."""
    if n == 0 or errors >= n:
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


def conformal_errors(n: int, target: float) -> int:
    """Calibration asks a conformal side may answer wrongly: floor(target (n + 1)) - 1; the
    threshold then sits at the floor(target (n + 1))-th most extreme ask. -1: it cannot fire."""
    return math.floor(target * (n + 1) + 1e-9) - 1


def allowed(n: int, target: float, guarantee: str, confidence: float = CONFIDENCE) -> int:
    """Calibration asks one side may answer wrongly under ``guarantee`` (-1: never fires)."""
    if guarantee == "conformal":
        return min(conformal_errors(n, target), n)
    return allowed_errors(n, target, confidence)


def min_asks(target: float, guarantee: str, confidence: float = CONFIDENCE) -> int:
    """The fewest calibration asks with which a side of this target can fire."""
    if guarantee == "conformal":
        return max(1, math.ceil(1 / target - 1e-9) - 1)
    # no error allowed: (1 - target)^n <= 1 - confidence
    n = math.ceil(math.log(1 - confidence) / math.log1p(-target))
    while upper_bound(0, n, confidence) > target:
        n += 1
    return n


def _grid(k: int) -> float:
    return round(k * RESOLUTION, 4)


def place_match(wrong: np.ndarray, k: int) -> float | None:
    """``match_at`` at the grid value just above the (k+1)-th highest wrong ask: at most k of
    ``wrong`` reach it (None when even p = 1 would let more in)."""
    wrong = np.sort(np.asarray(wrong, np.float64))[::-1]
    if k < 0:
        return None
    if k >= len(wrong):
        return 0.0
    w, step = float(wrong[k]), math.floor(float(wrong[k]) / RESOLUTION) + 1
    # integer steps, checked against w itself: w / RESOLUTION is off by one ulp on grid values
    while _grid(step) <= w:
        step += 1
    while step > 0 and _grid(step - 1) > w:
        step -= 1
    return None if _grid(step) > 1.0 else _grid(step)


def place_mismatch(correct: np.ndarray, k: int) -> float | None:
    """``mismatch_at`` at the grid value just below the (k+1)-th lowest correct ask: at most k
    of ``correct`` fall to it (None when even p = 0 would let more in)."""
    correct = np.sort(np.asarray(correct, np.float64))
    if k < 0:
        return None
    if k >= len(correct):
        return 1.0
    c, step = float(correct[k]), math.ceil(float(correct[k]) / RESOLUTION) - 1
    while _grid(step) >= c:
        step -= 1
    while _grid(step + 1) < c:
        step += 1
    return None if step < 0 else _grid(step)


@dataclass(frozen=True)
class Choice:
    rule: VerdictRule
    notes: tuple[str, ...] = ()
    # (expected count or "all", side, asks it had, asks it would need) for every side that never fires
    unmet: tuple[tuple[str, str, int, int], ...] = ()

    @property
    def thresholds(self) -> Thresholds:
        """The pooled pair (the one pair of a ``pooled`` choice)."""
        return self.rule.pooled


def choose_pair(asks: Asks, max_false_match: float, max_false_mismatch: float, guarantee: str = "pooled",
                confidence: float = CONFIDENCE, label: str = "all") -> Choice:
    """One pair of thresholds over ``asks``: each side at the most wrong answers ``guarantee``
    allows on its asks, so the pair has the largest auto share that meets both targets."""
    wrong, correct = asks.p[asks.off == 1], asks.p[asks.off == 0]
    rule = "conformal" if guarantee == "conformal" else "upper-bound"
    match_at = place_match(wrong, allowed(len(wrong), max_false_match, rule, confidence))
    mismatch_at = place_mismatch(correct, allowed(len(correct), max_false_mismatch, rule, confidence))
    unmet, notes = [], []
    for verdict, at, n, target, kind in (("match", match_at, len(wrong), max_false_match, "wrong"),
                                         ("mismatch", mismatch_at, len(correct), max_false_mismatch, "correct")):
        if at is None:
            need = min_asks(target, rule, confidence)
            unmet.append((label, verdict, n, need))
            where = "" if label == "all" else f" for expected count {label}"
            why = (f"{n} {kind} asks, {guarantee} needs {need}" if n < need else
                   f"{kind} asks at the very end of the probability range leave no threshold between them")
            notes.append(f"max-false-{verdict} {target:g} cannot be met{where}: {why}; "
                         f"`{verdict}` is never answered{where}")
    if match_at is not None and mismatch_at is not None and mismatch_at >= match_at:
        # both sides are safe over the whole overlap: one cut in its middle answers every ask
        cut = max(round((match_at + mismatch_at) / 2 / RESOLUTION), 1)
        match_at, mismatch_at = _grid(cut), _grid(cut - 1)
    return Choice(VerdictRule(Thresholds(match_at, mismatch_at)), tuple(notes), tuple(unmet))


def choose(asks: Asks, counts: list[int], max_false_match: float, max_false_mismatch: float,
           guarantee: str, confidence: float = CONFIDENCE) -> Choice:
    """The verdict rule for ``guarantee``: a pair per expected count of ``counts`` (each from
    that count's asks alone), or one ``pooled`` pair over all of them."""
    if guarantee not in GUARANTEES:
        raise ValueError(f"unknown verdict guarantee {guarantee!r} (one of {', '.join(GUARANTEES)})")
    if guarantee == "pooled":
        return choose_pair(asks, max_false_match, max_false_mismatch, guarantee, confidence)
    pairs, notes, unmet = [], [], []
    for count in counts:
        one = choose_pair(asks.where(asks.expected == count), max_false_match, max_false_mismatch,
                          guarantee, confidence, label=str(count))
        pairs.append((int(count), one.thresholds))
        notes += one.notes
        unmet += one.unmet
    # a count outside the card's classes is refused by the server; were one asked, nobody vouched for it
    return Choice(VerdictRule(Thresholds(None, None), tuple(pairs)), tuple(notes), tuple(unmet))


def interval(errors: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval of a rate seen as ``errors`` out of ``n``."""
    tail = (1 + confidence) / 2
    low = 0.0 if errors == 0 else 1 - upper_bound(n - errors, n, tail)
    return low, upper_bound(errors, n, tail)


def misses(point: dict, targets: dict) -> list[dict]:
    """Every expected count of a measured ``point`` (``verification.measure``) whose rate is
    above its target: count, verdict side, rate, errors, n and the 95 % interval."""
    found = []
    sides = (("match", "false_match_rate", "false_match_n", targets["max_false_match"]),
             ("mismatch", "false_mismatch_rate", "false_mismatch_n", targets["max_false_mismatch"]))
    for count, rates in sorted(point.get("per_expected", {}).items(), key=lambda kv: int(kv[0])):
        for side, rate_key, n_key, target in sides:
            rate, n = rates.get(rate_key), rates.get(n_key, 0)
            if rate is None or not n or rate <= target + 1e-12:
                continue
            errors = round(rate * n)
            found.append({"count": int(count), "side": side, "rate": rate, "errors": errors, "n": n,
                          "target": target, "interval": interval(errors, n)})
    return found


def miss_lines(point: dict, targets: dict) -> list[str]:
    """``misses`` as sentences for evaluation.md, audit.md and the reports."""
    return [f"expected count {m['count']}: false {m['side']} {m['rate'] * 100:.1f} % ({m['errors']} of {m['n']}; "
            f"95 % interval {m['interval'][0] * 100:.1f}-{m['interval'][1] * 100:.1f} %) is above its target "
            f"of {m['target'] * 100:g} %" for m in misses(point, targets)]
