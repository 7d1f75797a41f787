"""A model's score on the golden set, and the paired test that says whether one model beats
another on the same bins.

The answers come from the audit's own steps (a transform over the golden photos, joined with
the asked quantities); this module only counts: accuracy and RMSE of the count against the
golden count, the share of asks answered without a person, and the verdicts' errors with
their n (a false match: "match" while the bin does not hold the asked quantity; a false
mismatch: "mismatch" while it does). McNemar's exact test compares per-bin correctness.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from orchestrate.audit.join import Row


@dataclass(frozen=True)
class Score:
    n: int
    accuracy: float
    rmse: float
    auto_share: float                 # asks answered match or mismatch (no person needed)
    false_match: tuple[int, int]      # (wrong "match" answers, asks whose bin does not hold the quantity)
    false_mismatch: tuple[int, int]   # (wrong "mismatch" answers, asks whose bin holds it)
    correct: dict[str, bool] = field(default_factory=dict)   # by bin id: the count was right
    failed: int = 0                   # golden bins without an answer (they count as wrong)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["false_match"], d["false_mismatch"] = list(self.false_match), list(self.false_mismatch)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Score":
        return cls(**{**d, "false_match": tuple(d["false_match"]), "false_mismatch": tuple(d["false_mismatch"])})

    @staticmethod
    def rate(pair: tuple[int, int]) -> float | None:
        return pair[0] / pair[1] if pair[1] else None


def score(rows: list[Row], truth: dict[str, int]) -> Score:
    """``rows``: the joined answers for the golden bins (expected = the asked quantity);
    ``truth``: the golden count of each bin. A bin the model did not answer is wrong."""
    by_id = {r.bin_id: r for r in rows}
    correct, errors, auto = {}, [], 0
    fm = [0, 0]
    fmm = [0, 0]
    for bin_id, true in truth.items():
        r = by_id.get(bin_id)
        counted = r.counted if r is not None else None
        correct[bin_id] = counted == true
        errors.append((counted - true) ** 2 if counted is not None else None)
        if r is None or r.expected is None or r.verdict not in ("match", "mismatch", "review"):
            continue
        auto += r.verdict in ("match", "mismatch")
        holds = r.expected == true
        if holds:
            fmm[1] += 1
            fmm[0] += r.verdict == "mismatch"
        else:
            fm[1] += 1
            fm[0] += r.verdict == "match"
    answered = [e for e in errors if e is not None]
    asks = fm[1] + fmm[1]
    return Score(n=len(truth), accuracy=sum(correct.values()) / len(truth) if truth else 0.0,
                 rmse=math.sqrt(sum(answered) / len(answered)) if answered else float("nan"),
                 auto_share=auto / asks if asks else 0.0, false_match=tuple(fm), false_mismatch=tuple(fmm),
                 correct=correct, failed=sum(e is None for e in errors))


def mcnemar(a: Score, b: Score) -> tuple[int, int, float]:
    """(bins only ``a`` counts right, bins only ``b`` counts right, two-sided exact p-value):
    the binomial test on the discordant bins, which is what McNemar's test is for small n."""
    only_a = sum(a.correct[i] and not b.correct.get(i, False) for i in a.correct)
    only_b = sum(b.correct[i] and not a.correct.get(i, False) for i in b.correct)
    n = only_a + only_b
    if n == 0:
        return 0, 0, 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n
    return only_a, only_b, min(1.0, 2 * tail)
