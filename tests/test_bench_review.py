"""bench-review's cleaning arm corrupts exactly the stated share of records, one count off,
reproducibly; its paired comparison calls a difference beyond the seed spread only when it is."""

from __future__ import annotations

from benchmarks.review_arms import corrupt
from benchmarks.review_report import paired


def records(n: int = 1000) -> dict[str, int]:
    return {f"{i:05d}": 1 + i % 5 for i in range(n)}


def test_corrupt_moves_exactly_the_stated_share_one_count_and_only_inside_1_to_5():
    truth = records()
    noisy = corrupt(truth, 0.10, seed=7)
    changed = [i for i in truth if noisy[i] != truth[i]]
    assert len(changed) == 100 and set(noisy) == set(truth)
    assert all(abs(noisy[i] - truth[i]) == 1 and 1 <= noisy[i] <= 5 for i in changed)
    assert all(noisy[i] == 2 for i in changed if truth[i] == 1) and all(noisy[i] == 4 for i in changed if truth[i] == 5)
    ups = sum(noisy[i] > truth[i] for i in changed if truth[i] in (2, 3, 4))
    assert 0 < ups < sum(truth[i] in (2, 3, 4) for i in changed)  # both directions occur in the middle


def test_corrupt_is_fixed_by_its_seed():
    assert corrupt(records(), 0.10, seed=7) == corrupt(records(), 0.10, seed=7)
    assert corrupt(records(), 0.10, seed=7) != corrupt(records(), 0.10, seed=8)
    assert sum(a != b for a, b in zip(corrupt(records(200), 0.25, 1).values(), records(200).values())) == 50


def test_a_difference_is_beyond_the_spread_only_when_it_exceeds_two_standard_errors():
    random_runs = [{"seed": s, "accuracy": 0.30} for s in range(4)]
    steady = [{"seed": s, "accuracy": 0.30 + d} for s, d in enumerate((0.05, 0.06, 0.05, 0.06))]
    noisy = [{"seed": s, "accuracy": 0.30 + d} for s, d in enumerate((0.05, -0.05, 0.06, -0.04))]
    assert paired(steady, random_runs, "accuracy")[2] is True
    m, sd, beyond = paired(noisy, random_runs, "accuracy")
    assert beyond is False and abs(m - 0.005) < 1e-9 and sd > 0.04
