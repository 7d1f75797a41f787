"""promote's arithmetic on hand-made answers: a golden score by bincounter.verification's one
definition of an ask, McNemar's exact one-sided test, and the decision with its reason (the
first model on the evidence the golden set holds for each verdict side it answers; a candidate
against the incumbent)."""

from __future__ import annotations

import math

import pytest

from bincounter.guarantees import min_asks
from bincounter.modelcard import ModelCard
from bincounter.preprocess import PreprocessSpec
from bincounter.verification import Thresholds, VerdictRule
from orchestrate.audit.join import Row
from orchestrate.review.decision import against, first, sides, table
from orchestrate.review.scoring import mcnemar, score

CLASSES = [1, 2, 3, 4, 5]


def card(rule: VerdictRule, targets: dict | None = None, guarantee: str = "conformal") -> ModelCard:
    op = {"targets": targets, "guarantee": guarantee, "confidence": 0.95} if targets else {}
    return ModelCard(classes=CLASSES, preprocess=PreprocessSpec(64), arch="resnet18", verification=rule,
                     operating_point=op)


def sure(count: int, p: float = 0.96) -> dict[str, float]:
    """Probabilities putting ``p`` on ``count`` and the rest evenly on the other classes."""
    rest = (1 - p) / (len(CLASSES) - 1)
    return {str(c): p if c == count else rest for c in CLASSES}


def test_every_golden_bin_is_asked_its_true_count_and_each_count_one_off_and_the_card_answers():
    """a=3 (asks 3; 2 and 4 one off; 1 and 5 two off), b=1 (1; 2; 3), c=5 (5; 4; 3): 3 correct
    asks, 4 wrong ones, 4 two off, whatever quantity was recorded for them."""
    truth = {"a": 3, "b": 1, "c": 5, "d": 2}
    rows = [Row("a", counted=3, probabilities=sure(3)),                 # sure and right
            Row("b", counted=2, probabilities=sure(2)),                 # sure and wrong: "2" is one off
            Row("c", counted=5, probabilities={"1": 0.0, "2": 0.0, "3": 0.02, "4": 0.08, "5": 0.9})]
    rule = VerdictRule(Thresholds(match_at=0.7, mismatch_at=0.05))      # "d" was never answered
    s = score(rows, truth, card(rule))
    assert (s.n, s.accuracy, s.failed) == (4, 0.5, 1)
    assert s.rmse == pytest.approx(math.sqrt((0 + 1 + 0) / 3))
    assert s.false_match == (1, 4)       # b asked "2" (one off) answered match
    assert s.false_mismatch == (1, 3)    # b asked "1" (its count, p 0.01) answered mismatch
    assert s.rates["false_match_two_off_n"] == 4 and s.rates["false_match_rate_two_off"] == 0.0
    assert s.rates["per_expected"]["2"]["false_match_n"] == 2   # "2" asked of a (3) and of b (1): one off
    assert s.correct == {"a": True, "b": False, "c": True, "d": False}


def test_mcnemar_is_the_one_sided_exact_binomial_tail_on_the_discordant_bins():
    def scores(right_a: set[int], right_b: set[int], n: int = 40):
        truth = {str(i): 1 for i in range(n)}
        rule = card(VerdictRule(Thresholds(None, None)))
        rows = lambda right: [Row(str(i), counted=1 if i in right else 2, probabilities=sure(1)) for i in range(n)]
        return score(rows(right_a), truth, rule), score(rows(right_b), truth, rule)

    assert mcnemar(*scores(set(range(10)), set())) == (10, 0, pytest.approx(1 / 2 ** 10))
    assert mcnemar(*scores({0, 1, 2}, {3})) == (3, 1, pytest.approx((4 + 1) / 16))   # P(X >= 3), X ~ Bin(4, 1/2)
    assert mcnemar(*scores({0}, {1, 2, 3})) == (1, 3, pytest.approx(15 / 16))        # the other side: no evidence
    assert mcnemar(*scores({0}, {0})) == (0, 0, 1.0)
    # one-sided: 9 against 2 is p = 0.0327 (two-sided it would be 0.065 and refused at 0.05)
    assert mcnemar(*scores(set(range(9)), {20, 21}))[2] == pytest.approx(sum(math.comb(11, j) for j in range(9, 12)) / 2 ** 11)


def _golden(n_per_count: int, p: float = 0.96):
    truth = {f"{c}-{i}": c for c in CLASSES for i in range(n_per_count)}
    return [Row(k, counted=c, probabilities=sure(c, p)) for k, c in truth.items()], truth


def test_a_first_model_is_refused_when_the_golden_set_holds_fewer_asks_than_its_guarantee_needs():
    """A per-count conformal card at 1 %: `match` of a count needs 99 wrong asks of it; 40 golden
    bins hold 8-16 per count. The golden set asks every bin its own count too, and its model
    answers well: the asks are too few, whatever the rates."""
    rows, truth = _golden(8)
    rule = VerdictRule(Thresholds(None, None), tuple((c, Thresholds(0.9, 0.05)) for c in CLASSES))
    c = card(rule, {"max_false_match": 0.01, "max_false_mismatch": 0.05})
    d = first(score(rows, truth, c), c)
    assert not d.approve
    assert d.why.startswith("first model: the golden set is too small to vouch for its verdicts:")
    assert f"`match` of expected count 1: 8 wrong asks, needs {min_asks(0.01, 'conformal')}" in d.why
    assert min_asks(0.01, "conformal") == 99


def test_a_first_model_that_answers_only_review_is_refused():
    rows, truth = _golden(30)
    c = card(VerdictRule(Thresholds(None, None), tuple((k, Thresholds(None, None)) for k in CLASSES)),
             {"max_false_match": 0.1, "max_false_mismatch": 0.1})
    d = first(score(rows, truth, c), c)
    assert not d.approve and "answers every ask `review`" in d.why
    assert first(score(rows, truth, c), c, force=True).approve


def test_a_first_model_is_approved_on_enough_asks_kept_and_refused_when_it_misses_its_targets():
    rule = VerdictRule(Thresholds(None, None), tuple((k, Thresholds(0.9, 0.05)) for k in CLASSES))
    c = card(rule, {"max_false_match": 0.1, "max_false_mismatch": 0.1})   # conformal: 9 asks per side
    rows, truth = _golden(12)
    s = score(rows, truth, c)
    assert min(side.asks for side in sides(s, c)) >= min_asks(0.1, "conformal") == 9
    d = first(s, c)
    assert d.approve and "every verdict side it answers had the asks its guarantee needs (10 sides" in d.why
    # the same card on a model that is sure of the wrong count: its matches are false
    wrong = [Row(r.bin_id, counted=r.counted % 5 + 1, probabilities=sure(r.counted % 5 + 1)) for r in rows]
    d = first(score(wrong, truth, c), c)
    assert not d.approve and "its verdicts miss their targets on the golden set: false match" in d.why


def test_a_candidate_replaces_the_incumbent_only_when_it_wins_beyond_noise():
    c = card(VerdictRule(Thresholds(None, None)))
    truth = {str(i): 1 for i in range(40)}
    rows = lambda right: [Row(str(i), counted=1 if i in right else 2, probabilities=sure(1)) for i in range(40)]
    new, old = score(rows(set(range(12))), truth, c), score(rows({0}), truth, c)
    d = against(new, old, alpha=0.05)
    assert d.approve and d.why.startswith("wins: on the same 40 golden bins the candidate alone counts 11 right")
    d = against(score(rows({0, 1, 2}), truth, c), score(rows({3}), truth, c), alpha=0.05)
    assert not d.approve and d.why.startswith("not better beyond noise") and "p = 0.312" in d.why
    worse = against(old, new, alpha=0.05)
    assert not worse.approve and worse.why.startswith("not better:")
    forced = against(old, new, alpha=0.05, force=True)
    assert forced.approve and forced.description.startswith("forced by promote --force; not better:")
    assert "| false match (wrong asks answered match) |" in "\n".join(table({"candidate": new}))
