"""A model's score on the golden set, and the paired test that says whether one model beats
another on the same bins.

The answers come from the audit's own steps (a transform over the golden photos, joined,
each bin's probabilities kept); this module only counts, with ``bincounter.verification``'s
one definition of an ask: each golden bin is asked its true count (a correct ask) and each
count one off (wrong asks; two off reported apart), and the model's card decides each
verdict. So the golden set always holds wrong asks, whatever quantities were recorded, and a
false match here is the same thing as on the card's test split. Accuracy and RMSE compare the
model's count with the golden count; a bin the model did not answer counts as wrong.
McNemar's exact test compares per-bin correctness.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from bincounter.modelcard import ModelCard
from bincounter.verification import make_asks, measure
from orchestrate.audit.join import Row


@dataclass(frozen=True)
class Score:
    n: int
    accuracy: float
    rmse: float
    rates: dict                       # verification.measure on the golden asks: rates, n, per expected count
    correct: dict[str, bool] = field(default_factory=dict)   # by bin id: the count was right
    failed: int = 0                   # golden bins without an answer (wrong, and asked nothing)

    @property
    def auto_share(self) -> float:
        return self.rates.get("auto_share") or 0.0

    @property
    def false_match(self) -> tuple[int, int]:
        """(wrong asks answered "match", wrong asks)."""
        return _pair(self.rates, "false_match_rate", "false_match_n")

    @property
    def false_mismatch(self) -> tuple[int, int]:
        """(correct asks answered "mismatch", correct asks)."""
        return _pair(self.rates, "false_mismatch_rate", "false_mismatch_n")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Score":
        return cls(**d)

    @staticmethod
    def rate(pair: tuple[int, int]) -> float | None:
        return pair[0] / pair[1] if pair[1] else None


def _pair(rates: dict, rate_key: str, n_key: str) -> tuple[int, int]:
    n = int(rates.get(n_key) or 0)
    return round((rates.get(rate_key) or 0.0) * n), n


def score(rows: list[Row], truth: dict[str, int], card: ModelCard) -> Score:
    """``rows``: the joined answers for the golden bins, probabilities kept; ``truth``: the golden
    count of each bin; ``card``: the model's, whose verdict rule answers every ask."""
    by_id = {r.bin_id: r for r in rows}
    classes = [int(c) for c in card.classes]
    correct, errors, probs, labels = {}, [], [], []
    for bin_id, true in truth.items():
        r = by_id.get(bin_id)
        counted = r.counted if r is not None else None
        correct[bin_id] = counted == true
        errors.append(None if counted is None else (counted - true) ** 2)
        if r is not None and r.probabilities:
            probs.append([float(r.probabilities.get(str(c), 0.0)) for c in classes])
            labels.append(true)
    asks = make_asks(np.array(probs).reshape(-1, len(classes)), np.array(labels, dtype=int), classes)
    answered = [e for e in errors if e is not None]
    return Score(n=len(truth), accuracy=sum(correct.values()) / len(truth) if truth else 0.0,
                 rmse=math.sqrt(sum(answered) / len(answered)) if answered else float("nan"),
                 rates=_plain(measure(asks, card.verification)), correct=correct,
                 failed=sum(e is None for e in errors))


def _plain(value):
    """``measure``'s dict with numpy numbers made plain (it is kept as JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value


def mcnemar(a: Score, b: Score) -> tuple[int, int, float]:
    """(bins only ``a`` counts right, bins only ``b`` counts right, one-sided exact p-value of
    ``a`` being better): the binomial tail P(X >= only_a) for X ~ Bin(discordant, 1/2), which
    is McNemar's test for small n, one-sided because the rule asks only "is ``a`` better"."""
    only_a = sum(a.correct[i] and not b.correct.get(i, False) for i in a.correct)
    only_b = sum(b.correct[i] and not a.correct.get(i, False) for i in b.correct)
    n = only_a + only_b
    if n == 0:
        return 0, 0, 1.0
    return only_a, only_b, sum(math.comb(n, j) for j in range(only_a, n + 1)) / 2 ** n
