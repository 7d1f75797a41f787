"""The reference, the drift tests and the label-free estimates, on hand-made probability tables."""

from __future__ import annotations

import numpy as np
import pytest

from bincounter.monitoring import drift, reference
from bincounter.verification import Thresholds, VerdictRule

CLASSES = [1, 2, 3, 4, 5]
RULE = VerdictRule(Thresholds(match_at=0.7, mismatch_at=0.1))


def _answer(p: list[float], expected: int | None = None) -> dict:
    a = {"count": CLASSES[int(np.argmax(p))], "probabilities": {str(c): v for c, v in zip(CLASSES, p)}}
    if expected is not None:
        match = p[expected - 1]
        a["verification"] = {"expected_quantity": expected, "match_probability": match,
                             "verdict": RULE.verdict(match, expected)}
    return a


def _table(rng, n: int, sharp: float) -> tuple[np.ndarray, np.ndarray]:
    """n photos: labels uniform over the classes, probabilities peaked at the label by ``sharp``."""
    labels = rng.integers(1, 6, n)
    logits = rng.normal(0, 1, (n, 5))
    logits[np.arange(n), labels - 1] += sharp
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return p, labels


def test_the_label_free_estimates_are_the_exact_expectations_of_a_hand_made_table():
    answers = [_answer([0.8, 0.1, 0.05, 0.03, 0.02], 1), _answer([0.1, 0.9, 0.0, 0.0, 0.0], 2),
               _answer([0.2, 0.2, 0.2, 0.2, 0.2], 3), _answer([0.0, 0.05, 0.05, 0.1, 0.8], 4)]
    live = drift.live_values(answers, CLASSES)
    e = drift.estimates(live, {"measured": {}})
    # expected accuracy: the mean probability of the counted class
    assert e["accuracy_estimate"] == pytest.approx((0.8 + 0.9 + 0.2 + 0.8) / 4)
    # two match answers (p 0.8 and 0.9): the expected share of wrong bins among them
    assert e["match_n"] == 2 and e["match_wrong_estimate"] == pytest.approx((0.2 + 0.1) / 2)


def test_the_reference_holds_each_photos_answer_and_the_test_values_beside_their_estimates():
    p = np.array([[0.7, 0.2, 0.1, 0, 0], [0.1, 0.8, 0.1, 0, 0], [0, 0, 0.3, 0.6, 0.1]])
    ref = reference.build(p, np.array([1, 2, 3]), CLASSES, RULE)
    assert ref["n"] == 3 and ref["counted"] == [1, 2, 4] and ref["p_counted"] == [0.7, 0.8, 0.6]
    assert ref["entropy"][1] < ref["entropy"][2] and all(0 <= e <= 1 for e in ref["entropy"])
    assert ref["verdicts"] == {"match": 2, "review": 1, "mismatch": 0}  # each photo asked with its own count
    m = ref["measured"]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["accuracy_estimate"] == pytest.approx(0.7)
    # the asks 0, 1 and 2 off: match answers are photo 1 asked 1 (p .7) and photo 2 asked 2 (p .8), both right
    assert m["match_n"] == 2 and m["match_wrong_share"] == 0 and m["match_wrong_estimate"] == pytest.approx(0.25)


def test_a_window_like_the_reference_does_not_drift_and_a_shifted_one_does_naming_it():
    rng = np.random.default_rng(0)
    p, labels = _table(rng, 600, 2.0)
    ref = reference.build(p, labels, CLASSES, RULE)
    quiet_p, quiet_labels = _table(rng, 300, 2.0)
    quiet = drift.compare(ref, [_answer(list(r), int(y)) for r, y in zip(quiet_p, quiet_labels)])
    assert quiet["drift"] is False and len(quiet["tests"]) == 4 and not quiet["skipped"], quiet["reasons"]
    assert all(t["threshold"] == pytest.approx(0.05 / 4) for t in quiet["tests"])
    # darker photos: the model grows unsure (flatter probabilities), and most bins hold 5 items
    flat_p, _ = _table(rng, 300, 0.5)
    flat_p[:, 4] += 0.5
    flat_p /= flat_p.sum(axis=1, keepdims=True)
    shifted = drift.compare(ref, [_answer(list(r), 5) for r in flat_p])
    assert shifted["drift"] is True
    named = {t["distribution"] for t in shifted["tests"] if t["drift"]}
    assert {"counted class", "probability of the counted class", "entropy"} <= named
    assert any(r.startswith("counted class: chi-square") for r in shifted["reasons"])


def test_a_window_too_small_runs_no_test_and_says_why():
    rng = np.random.default_rng(1)
    p, labels = _table(rng, 100, 2.0)
    out = drift.compare(reference.build(p, labels, CLASSES, RULE), [_answer(list(r)) for r in p[:10]])
    assert out["tests"] == [] and out["drift"] is False and "10 answers" in out["skipped"][0]


def _exact_permutation_p(ref: list[int], live: list[int]) -> float:
    """The exact permutation p-value of Pearson's statistic on a 2 x K table: every way of drawing
    the window's total out of the pooled counts (multivariate hypergeometric), weighted by its
    probability, counted where the statistic is at least the observed one. Enumerated here
    independently of drift's Monte Carlo."""
    import itertools
    import math

    totals, n_live = [a + b for a, b in zip(ref, live)], sum(live)

    def chi2(r, w):
        n = sum(r) + sum(w)
        return sum((obs - (sum(row) * (a + b) / n)) ** 2 / (sum(row) * (a + b) / n)
                   for row in (r, w) for obs, a, b in zip(row, r, w) if a + b)

    observed, p = chi2(ref, live), 0.0
    for w in itertools.product(*(range(t + 1) for t in totals)):
        if sum(w) != n_live:
            continue
        r = [t - x for t, x in zip(totals, w)]
        weight = math.prod(math.comb(t, x) for t, x in zip(totals, w)) / math.comb(sum(totals), n_live)
        if chi2(r, list(w)) >= observed - 1e-9:
            p += weight
    return p


@pytest.mark.parametrize("ref, live", [([3, 2, 1], [0, 1, 4]), ([6, 4, 2], [1, 2, 5]), ([2, 2, 2, 2], [0, 1, 3, 4])])
def test_a_small_tables_permutation_p_value_is_the_exact_one_within_its_monte_carlo_error(ref, live):
    """Cells below 5 take the permutation branch; its 1,000 seeded shuffles must land within three
    standard errors of the exact enumeration (counting only "greater than" ties would not)."""
    keys = list(range(len(ref)))
    from collections import Counter
    found = drift._categories(Counter({k: n for k, n in zip(keys, ref)}), Counter({k: n for k, n in zip(keys, live)}),
                              keys)
    exact = _exact_permutation_p(ref, live)
    assert 0.001 < exact < 0.9
    error = 3 * (exact * (1 - exact) / drift.PERMUTATIONS) ** 0.5 + 1 / drift.PERMUTATIONS
    assert abs(found[1] - exact) <= error, (found, exact)
