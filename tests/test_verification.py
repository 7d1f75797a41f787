"""The verdict definitions and the pooled threshold choice, as pure functions on hand-made
tables (the per-count guarantees: test_guarantees.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bincounter.guarantees import allowed_errors, choose_pair, upper_bound
from bincounter.verification import Thresholds, VerdictRule, make_asks, measure

COUNTS = [1, 2, 3, 4, 5]


def test_asks_are_one_correct_and_the_wrong_ones_within_range_per_image():
    probs = np.full((2, 5), 0.2)
    asks = make_asks(probs, np.array([1, 3]), COUNTS)
    # label 1: correct 1, one off 2, two off 3; label 3: correct 3, one off 2 and 4, two off 1 and 5
    assert sorted(zip(asks.off.tolist(), asks.expected.tolist())) == [
        (0, 1), (0, 3), (1, 2), (1, 2), (1, 4), (2, 1), (2, 3), (2, 5)]


def test_upper_bound_is_the_exact_clopper_pearson_bound():
    assert upper_bound(0, 299) == pytest.approx(1 - 0.05 ** (1 / 299), rel=1e-6)  # closed form at 0 errors
    assert upper_bound(0, 299) < 0.01 < upper_bound(0, 298)                       # "rule of three"
    assert upper_bound(5, 100) == pytest.approx(0.1023, abs=2e-4)                 # scipy.stats.beta.ppf(.95, 6, 95)
    assert allowed_errors(298, 0.01) == -1 and allowed_errors(299, 0.01) == 0


def choose_thresholds(asks, max_false_match: float, max_false_mismatch: float):
    """The pooled rule (one pair for every count at the 95 % bound)."""
    return choose_pair(asks, max_false_match, max_false_mismatch, "pooled")


def _table(n_per_class: int = 400, sharp: float = 3.0, seed: int = 0):
    """Labels with class probabilities that favour the label by ``sharp`` logits, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(COUNTS, n_per_class)
    logits = rng.normal(0, 1.5, (len(labels), 5))
    logits[np.arange(len(labels)), labels - 1] += sharp
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


def test_chosen_thresholds_meet_both_targets_with_room_for_the_bound():
    probs, labels = _table()
    asks = make_asks(probs, labels, COUNTS)
    choice = choose_thresholds(asks, 0.01, 0.05)
    rates = measure(asks, choice.thresholds)
    assert choice.notes == ()
    assert upper_bound(round(rates["false_match_rate"] * rates["false_match_n"]), rates["false_match_n"]) <= 0.01
    assert upper_bound(round(rates["false_mismatch_rate"] * rates["false_mismatch_n"]),
                       rates["false_mismatch_n"]) <= 0.05


def test_chosen_thresholds_maximise_the_auto_share():
    """Moving either threshold one step towards the middle breaks its target's bound."""
    probs, labels = _table()
    asks = make_asks(probs, labels, COUNTS)
    chosen = choose_thresholds(asks, 0.01, 0.05).thresholds
    auto = measure(asks, chosen)["auto_share"]
    wrong, correct = asks.p[asks.off == 1], asks.p[asks.off == 0]
    looser_match = wrong[wrong < chosen.match_at].max()        # the next wrong ask down becomes a match
    looser_mismatch = correct[correct > chosen.mismatch_at].min()
    for looser in (Thresholds(looser_match, chosen.mismatch_at), Thresholds(chosen.match_at, looser_mismatch)):
        rates = measure(asks, looser)
        assert rates["auto_share"] > auto
        fm = upper_bound(round(rates["false_match_rate"] * rates["false_match_n"]), rates["false_match_n"])
        fmm = upper_bound(round(rates["false_mismatch_rate"] * rates["false_mismatch_n"]),
                          rates["false_mismatch_n"])
        assert fm > 0.01 or fmm > 0.05


def test_a_target_nothing_can_meet_leaves_that_verdict_unused_and_says_why():
    probs, labels = _table(n_per_class=20)  # 80 correct-ask-rich images: far below 299 wrong asks
    asks = make_asks(probs, labels, COUNTS)
    choice = choose_thresholds(asks, 0.001, 0.05)
    assert choice.thresholds.match_at is None and choice.thresholds.mismatch_at is not None
    assert len(choice.notes) == 1 and "max-false-match 0.001 cannot be met" in choice.notes[0]
    assert choice.unmet == (("all", "match", len(asks.p[asks.off == 1]), 2995),)  # (1 - .001)^2995 <= .05
    rates = measure(asks, choice.thresholds)
    assert rates["false_match_rate"] == 0.0 and rates["auto_share_wrong"] > 0  # only mismatches answered


def test_a_perfect_model_answers_every_ask_at_one_cut():
    labels = np.repeat(COUNTS, 400)
    probs = np.eye(5)[labels - 1] * 0.96 + 0.01
    choice = choose_thresholds(make_asks(probs, labels, COUNTS), 0.01, 0.05)
    rates = measure(make_asks(probs, labels, COUNTS), choice.thresholds)
    assert rates["auto_share"] == 1.0 and rates["false_match_rate"] == 0 and rates["false_mismatch_rate"] == 0


def test_rates_follow_the_definitions_on_a_table_small_enough_to_count_by_hand():
    # two images labelled 2: p(2) = .9 and .3; p(1) = .05 and .6; p(3) = .02 and .05
    probs = np.array([[.05, .9, .02, .02, .01], [.6, .3, .05, .04, .01]])
    rates = measure(make_asks(probs, np.array([2, 2]), COUNTS), Thresholds(0.5, 0.1))
    # correct asks p = .9 (match), .3 (review); wrong asks (1 and 3) p = .05, .02 (mismatch), .6 (match), .05
    assert rates["false_mismatch_rate"] == 0.0 and rates["false_mismatch_n"] == 2
    assert rates["false_match_rate"] == 0.25 and rates["false_match_n"] == 4
    assert rates["auto_share"] == pytest.approx((1 / 2 + 4 / 4) / 2)
    assert rates["per_expected"]["1"] == {"auto_share": None, "false_match_rate": 0.5, "false_match_n": 2,
                                          "false_mismatch_rate": None, "false_mismatch_n": 0}


def test_verdict_of_an_unset_threshold_is_never_given():
    assert Thresholds(None, None).verdict(1.0) == "review" == Thresholds(None, None).verdict(0.0)
    assert Thresholds(None, 0.2).verdict(0.1) == "mismatch"
    with pytest.raises(ValueError):
        Thresholds(0.3, 0.3)


def test_a_rule_judges_each_ask_by_its_expected_counts_pair_and_others_by_the_pooled_one():
    rule = VerdictRule(Thresholds(None, None), ((1, Thresholds(0.9, 0.2)), (2, Thresholds(0.4, 0.1))))
    p, expected = np.array([0.5, 0.5, 0.15, 0.15, 0.99]), np.array([1, 2, 1, 2, 3])
    assert rule.verdicts(p, expected).tolist() == ["review", "match", "mismatch", "review", "review"]
    assert [rule.verdict(float(a), int(b)) for a, b in zip(p, expected)] == rule.verdicts(p, expected).tolist()
    assert VerdictRule.from_dict(rule.to_dict()) == rule
    assert rule.to_dict()["per_count"]["2"] == {"match_at": 0.4, "mismatch_at": 0.1}
    # an operator's override sets one side for every count and keeps the other sides
    assert rule.replace_sides(match_at=0.95).by_count == {1: Thresholds(0.95, 0.2), 2: Thresholds(0.95, 0.1)}
    with pytest.raises(ValueError):
        rule.replace_sides(mismatch_at=0.5)  # 0.5 >= count 2's match_at 0.4
