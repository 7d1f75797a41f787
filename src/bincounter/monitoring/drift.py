"""A window of live answers against the reference: a drift test per distribution and the
label-free estimates.

Tests (scipy): the counted class and the verdict mix are categories, compared by a
chi-square test of homogeneity on the 2 x K table of reference and live counts (its p-value
by permutation when any expected cell count is below 5, where the chi-square distribution
is too optimistic: measured, a window of 30 raised 15 % false alarms with the asymptotic
p-value); the probability of the counted class and the entropy are numbers, compared by the
two-sample Kolmogorov-Smirnov test. These are the tests Evidently's DataDriftPreset picks below 1,000
reference rows (a test split of a few hundred to a few thousand photos), computed directly:
Evidently would add pandas, scikit-learn and plotly to the image the scheduled report runs
in for four calls of scipy it makes itself. The window drifts when any test's p-value is
below ``alpha`` divided by the number of tests run (Bonferroni: four correlated tests at
0.05 each would raise a false alarm on about one quiet window in six).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats as st

from bincounter.monitoring.reference import answer_stats
from bincounter.verification import VERDICTS

ALPHA = 0.05
PERMUTATIONS = 1000  # for a small table's chi-square p-value; seeded, so a report is reproducible
# fewer live answers than this and a test says nothing useful: it is not run, and the report says so
MIN_ANSWERS = 30


def live_values(answers: list[dict], classes: list[int]) -> dict:
    """The live answers as the reference's values, plus their verdicts and match probabilities."""
    p = np.array([[float(a["probabilities"].get(str(c), 0.0)) for c in classes] for a in answers], np.float64)
    values = answer_stats(p, classes) if len(p) else {k: np.array([]) for k in ("counted", "p_counted", "entropy")}
    checked = [a["verification"] for a in answers if isinstance(a.get("verification"), dict)]
    values["verdicts"] = [c.get("verdict") for c in checked]
    values["match_p"] = np.array([float(c["match_probability"]) for c in checked if c.get("verdict") == "match"])
    return values


def _chi2(table: np.ndarray) -> np.ndarray:
    """Pearson's statistic of each 2 x K table in ``table`` (..., 2, K)."""
    expected = table.sum(axis=-2, keepdims=True) * table.sum(axis=-1, keepdims=True) / table.sum(axis=(-2, -1),
                                                                                                 keepdims=True)
    return (((table - expected) ** 2) / np.where(expected > 0, expected, 1)).sum(axis=(-2, -1))


def _categories(ref: Counter, live: Counter, keys: list) -> tuple[float, float] | None:
    table = np.array([[ref.get(k, 0) for k in keys], [live.get(k, 0) for k in keys]], np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None  # one category only: nothing to compare
    chi2, p, _, expected = st.chi2_contingency(table, correction=False)
    if expected.min() >= 5:
        return float(chi2), float(p)
    # small cells: the share of label permutations between reference and window at least as extreme
    codes = np.concatenate([np.repeat(np.arange(table.shape[1]), table[0].astype(int)),
                            np.repeat(np.arange(table.shape[1]), table[1].astype(int))])
    n_ref = int(table[0].sum())
    shuffled = np.random.default_rng(0).permuted(np.tile(codes, (PERMUTATIONS, 1)), axis=1)
    live_counts = (shuffled[:, n_ref:, None] == np.arange(table.shape[1])).sum(axis=1)
    tables = np.stack([table.sum(axis=0) - live_counts, live_counts], axis=1).astype(np.float64)
    p = (1 + int((_chi2(tables) >= chi2 - 1e-9).sum())) / (PERMUTATIONS + 1)
    return float(chi2), float(p)


def compare(reference: dict, answers: list[dict], alpha: float = ALPHA, min_answers: int = MIN_ANSWERS) -> dict:
    """Tests, estimates and the verdict ``drift`` with its reasons."""
    classes = reference["classes"]
    live = live_values(answers, classes)
    n = len(live["counted"])
    tests: list[dict] = []
    skipped: list[str] = []
    if n < min_answers:
        skipped.append(f"{n} answers in the window: the drift tests need at least {min_answers}")
    else:
        found = _categories(Counter(reference["counted"]), Counter(live["counted"].tolist()), classes)
        if found:
            tests.append({"distribution": "counted class", "test": "chi-square", "statistic": found[0],
                          "p_value": found[1], "n": n})
        for name, label in (("p_counted", "probability of the counted class"), ("entropy", "entropy")):
            ks = st.ks_2samp(np.asarray(reference[name]), live[name])
            tests.append({"distribution": label, "test": "Kolmogorov-Smirnov", "statistic": float(ks.statistic),
                          "p_value": float(ks.pvalue), "n": n})
        if len(live["verdicts"]) >= min_answers:
            found = _categories(Counter(reference["verdicts"]), Counter(live["verdicts"]), list(VERDICTS))
            if found:
                tests.append({"distribution": "verdict mix", "test": "chi-square", "statistic": found[0],
                              "p_value": found[1], "n": len(live["verdicts"])})
        else:
            skipped.append(f"{len(live['verdicts'])} answers with an expected quantity: the verdict mix needs "
                           f"at least {min_answers}")
    threshold = alpha / len(tests) if tests else alpha
    for t in tests:
        t["threshold"], t["drift"] = threshold, t["p_value"] < threshold
    reasons = [f"{t['distribution']}: {t['test']} {t['statistic']:.3f}, p = {t['p_value']:.2g} < {threshold:.3g}"
               for t in tests if t["drift"]]
    mix = Counter(live["verdicts"])
    return {"n": n, "alpha": alpha, "tests": tests, "skipped": skipped,
            "drift": bool(reasons), "reasons": reasons,
            "live": {"counted": {str(c): int((live["counted"] == c).sum()) for c in classes},
                     "verdicts": {v: mix.get(v, 0) for v in VERDICTS}, "verdict_n": len(live["verdicts"])},
            "estimates": estimates(live, reference)}


def estimates(live: dict, reference: dict) -> dict:
    """Label-free: the expected accuracy of the counted class (mean probability of the counted
    class) and the expected share of wrong bins among ``match`` answers (mean of 1 - p), beside
    the test split's measured values and the same estimates made there."""
    m = reference.get("measured", {})
    return {"accuracy_estimate": float(live["p_counted"].mean()) if len(live["p_counted"]) else None,
            "match_wrong_estimate": float((1 - live["match_p"]).mean()) if len(live["match_p"]) else None,
            "match_n": int(len(live["match_p"])),
            "test": {k: m.get(k) for k in ("accuracy", "accuracy_estimate", "match_wrong_share",
                                           "match_wrong_estimate", "match_n")}}
