"""The per-count guarantees: the conformal rule exactly on hand-made tables, its promise by
simulation, the asks each side needs, and the flags for a count above its target."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bincounter.guarantees import (allowed, choose, choose_pair, conformal_errors, interval, min_asks, miss_lines,
                                   misses, upper_bound)
from bincounter.verification import Asks, Thresholds, measure


def asks_of(count: int, correct: list[float], wrong: list[float]) -> Asks:
    """Asks of one expected count: ``correct`` asks (off 0) and ``wrong`` ones (off 1)."""
    p = np.array([*correct, *wrong], np.float64)
    off = np.array([0] * len(correct) + [1] * len(wrong))
    return Asks(p, np.full(len(p), count), off)


def test_conformal_mismatch_sits_just_below_the_floor_target_n_plus_1_th_lowest_correct_ask():
    correct = [i / 100 for i in range(1, 40)]  # n = 39: floor(0.05 x 40) = 2 -> below the 2nd lowest, 0.02
    pair = choose_pair(asks_of(3, correct, [0.5] * 200), 0.5, 0.05, "conformal").thresholds
    assert pair.mismatch_at == pytest.approx(0.0199)
    assert conformal_errors(39, 0.05) == 1 and conformal_errors(38, 0.05) == 0  # floor(0.05 x 39) = 1


def test_conformal_match_sits_just_above_the_floor_target_n_plus_1_th_highest_wrong_ask():
    wrong = [i / 100 for i in range(1, 20)]  # n = 19: floor(0.1 x 20) = 2 -> above the 2nd highest, 0.18
    pair = choose_pair(asks_of(2, [0.99] * 10, wrong), 0.1, 0.01, "conformal").thresholds  # no mismatch side
    assert pair.match_at == pytest.approx(0.1801)
    rates = measure(asks_of(2, [], wrong), pair)
    assert rates["false_match_rate"] == pytest.approx(1 / 19)  # only 0.19 reaches it


def test_a_side_with_fewer_asks_than_its_target_needs_never_fires_and_says_the_n_it_needs():
    assert min_asks(0.05, "conformal") == 19 and min_asks(0.01, "conformal") == 99
    assert min_asks(0.05, "upper-bound") == 59 and min_asks(0.01, "upper-bound") == 299
    assert allowed(18, 0.05, "conformal") == -1 and allowed(19, 0.05, "conformal") == 0
    assert upper_bound(0, 59) <= 0.05 < upper_bound(0, 58)
    choice = choose(asks_of(4, [0.9] * 18, [0.1] * 98), [4], 0.01, 0.05, "conformal")
    pair = choice.rule.for_count(4)
    assert pair == Thresholds(None, None)
    assert set(choice.unmet) == {("4", "match", 98, 99), ("4", "mismatch", 18, 19)}
    assert any("expected count 4: 18 correct asks, conformal needs 19" in n for n in choice.notes)


def test_ties_at_the_order_statistic_are_never_crossed():
    # the 2nd lowest correct ask is tied with the 3rd and 4th: none of the tied asks is a mismatch
    correct = [0.05, 0.1, 0.1, 0.1] + [0.8] * 35
    pair = choose_pair(asks_of(1, correct, [0.5] * 200), 0.5, 0.05, "conformal").thresholds
    assert pair.mismatch_at < 0.1
    assert measure(asks_of(1, correct, []), pair)["false_mismatch_rate"] == pytest.approx(1 / 39)


def test_each_count_gets_its_own_pair_from_its_own_asks():
    rng = np.random.default_rng(0)
    sharp = asks_of(1, rng.beta(9, 1, 200).tolist(), rng.beta(1, 9, 300).tolist())
    vague = asks_of(2, rng.beta(2, 2, 200).tolist(), rng.beta(2, 2, 300).tolist())
    both = Asks(*(np.concatenate([getattr(sharp, f), getattr(vague, f)]) for f in ("p", "expected", "off")))
    rule = choose(both, [1, 2], 0.01, 0.05, "conformal").rule
    assert rule.for_count(1) == choose_pair(sharp, 0.01, 0.05, "conformal").thresholds
    assert rule.for_count(2) == choose_pair(vague, 0.01, 0.05, "conformal").thresholds
    assert rule.for_count(1).match_at < rule.for_count(2).match_at  # the sharp count vouches for more


def test_unknown_guarantee_is_refused():
    with pytest.raises(ValueError, match="unknown verdict guarantee"):
        choose(asks_of(1, [0.5], [0.5]), [1], 0.01, 0.05, "hopeful")


@pytest.mark.parametrize("n_correct,n_wrong", [(40, 120), (150, 400)])
def test_conformal_rates_are_within_their_targets_in_expectation_over_calibration_draws(n_correct, n_wrong):
    """Scores of a known distribution per count: correct asks' p ~ Beta(a, 2), wrong asks' p ~
    Beta(2, b); the true rate of each drawn threshold is exact (the Beta CDF). Over 2,000 draws
    of the calibration set, each count's mean true rate is at most its target (tolerance: 4
    standard errors of the mean), while single draws go above it (the promise is an expectation)."""
    rng = np.random.default_rng(7)
    targets = {"match": 0.02, "mismatch": 0.05}
    shapes = {1: (6, 4), 2: (3, 2), 3: (8, 8)}  # (a, b): count 2 is the hard one
    for count, (a, b) in shapes.items():
        fm, fmm = [], []
        for _ in range(2000):
            asks = asks_of(count, rng.beta(a, 2, n_correct).tolist(), rng.beta(2, b, n_wrong).tolist())
            pair = choose(asks, [count], targets["match"], targets["mismatch"], "conformal").rule.for_count(count)
            fm.append(0.0 if pair.match_at is None else stats.beta.sf(pair.match_at, 2, b))
            fmm.append(0.0 if pair.mismatch_at is None else stats.beta.cdf(pair.mismatch_at, a, 2))
        for rates, target in ((np.array(fm), targets["match"]), (np.array(fmm), targets["mismatch"])):
            assert rates.mean() <= target + 4 * rates.std() / np.sqrt(len(rates)), (count, rates.mean(), target)
            assert rates.mean() >= target * 0.5  # not vacuous: the rule uses its budget
            assert rates.max() > target           # and one draw can exceed it


def test_a_count_above_its_target_is_flagged_with_n_and_interval():
    point = {"per_expected": {
        "1": {"false_match_rate": 0.02, "false_match_n": 743, "false_mismatch_rate": 57 / 392, "false_mismatch_n": 392,
              "auto_share": 0.35},
        "2": {"false_match_rate": 0.0, "false_match_n": 1229, "false_mismatch_rate": 0.001, "false_mismatch_n": 743,
              "auto_share": 0.004},
        "3": {"false_match_rate": None, "false_match_n": 0, "false_mismatch_rate": None, "false_mismatch_n": 0,
              "auto_share": None}}}
    targets = {"max_false_match": 0.01, "max_false_mismatch": 0.05}
    found = misses(point, targets)
    assert [(m["count"], m["side"], m["errors"], m["n"]) for m in found] == [(1, "match", 15, 743),
                                                                             (1, "mismatch", 57, 392)]
    low, high = found[1]["interval"]
    assert low == pytest.approx(stats.beta.ppf(0.025, 57, 392 - 57 + 1), abs=1e-6)
    assert high == pytest.approx(stats.beta.ppf(0.975, 58, 392 - 57), abs=1e-6)
    lines = miss_lines(point, targets)
    assert lines[1] == ("expected count 1: false mismatch 14.5 % (57 of 392; 95 % interval "
                        f"{low * 100:.1f}-{high * 100:.1f} %) is above its target of 5 %")
    assert interval(0, 10)[0] == 0.0


def test_a_wrong_ask_at_probability_1_leaves_match_unanswered_and_says_why():
    choice = choose(asks_of(2, [0.9] * 40, [1.0] * 5 + [0.1] * 195), [2], 0.01, 0.05, "conformal")
    assert choice.rule.for_count(2).match_at is None  # no threshold can keep p = 1 out
    assert any("very end of the probability range" in n for n in choice.notes)
