"""Each strategy of ``orchestrate.review.picks`` on a hand-made pool of ten bins picks exactly
the bins its definition names; the scoring pass reads the graph's embedding."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrate.review.picks import Pool, PickError, pick, quota

INF = np.inf
IDS = tuple(f"b{i}" for i in range(10))
RECORDED = np.array([1, 1, 1, 2, 2, 3, 3, 4, 5, 5])
RANK = np.array([0, 1, 2, 3, INF, 4, 5, INF, 6, 7])  # b4 and b7 are off the recount list (matches)
MARGIN = [0.50, 0.05, 0.30, 0.10, 0.20, 0.40, 0.01, 0.60, 0.15, 0.02]


def probabilities() -> np.ndarray:
    """Rows whose two likeliest counts differ by MARGIN."""
    p = np.zeros((10, 5))
    for i, m in enumerate(MARGIN):
        p[i, i % 5], p[i, (i + 1) % 5] = 0.5 + m / 2, 0.5 - m / 2
    return p


def embedding() -> np.ndarray:
    """Two groups: b0-b5 around (1, 0) with b2 at its centre, b6-b9 around (0, 1) with b7 at its centre."""
    a = [(1.1, 0.1), (0.9, -0.1), (1.0, 0.0), (1.1, -0.1), (0.9, 0.1), (1.0, 0.15)]
    b = [(0.1, 1.1), (0.0, 1.0), (-0.1, 0.9), (0.1, 0.9)]
    out = np.zeros((10, 64))
    out[:, :2] = a + b
    return out


def pool(**kw) -> Pool:
    return Pool(IDS, RECORDED, RANK, (1, 2, 3, 4, 5), kw.get("probabilities", probabilities()),
                kw.get("embedding", embedding()))


def test_recount_head_is_the_head_of_the_recount_list_and_never_a_bin_off_it():
    assert pick("recount-head", pool(), 3) == ["b0", "b1", "b2"]
    assert pick("recount-head", pool(), 10) == ["b0", "b1", "b2", "b3", "b5", "b6", "b8", "b9"]


def test_per_count_walks_the_recount_order_with_a_quota_per_recorded_count():
    # one place per count: count 4's only bin (b7) is off the list and still taken
    assert pick("per-count", pool(), 5) == ["b0", "b3", "b5", "b8", "b7"]
    # B = 7: counts 1 and 2 get the two extra places (b1, then b4 off the list)
    assert pick("per-count", pool(), 7) == ["b0", "b1", "b3", "b5", "b8", "b4", "b7"]


def test_a_count_that_cannot_fill_its_quota_gives_its_places_to_the_best_remaining_bins():
    classes = np.array([1, 1, 1, 1, 2])
    assert quota(np.arange(5), classes, (1, 2, 3), 4) == [0, 1, 4, 2]


def test_margin_takes_the_smallest_top_two_margins_with_the_quota():
    # by margin: b6 b9 b1 b3 b8 b4 b2 b5 b0 b7; b8 (a second 5) waits, b7 fills count 4
    assert pick("margin", pool(), 5) == ["b6", "b9", "b1", "b3", "b7"]


def test_typical_takes_the_most_typical_bin_of_each_cluster_largest_cluster_first():
    assert pick("typical", pool(), 2, seed=0) == ["b2", "b7"]
    assert pick("typical", pool(), 2, seed=5) == ["b2", "b7"]


def test_random_is_fixed_by_its_seed_and_never_repeats_a_bin():
    a = pick("random", pool(), 6, seed=3)
    assert a == pick("random", pool(), 6, seed=3) and len(set(a)) == 6 and set(a) <= set(IDS)
    assert a != pick("random", pool(), 6, seed=4)


def test_mixed_is_half_random_then_margin_among_the_rest():
    half = pick("random", pool(), 3, seed=1)
    assert half == ["b8", "b4", "b7"]  # what the seed draws (checked once by hand)
    # then margin among the rest, B = 3 over five counts: one place each for counts 1, 2, 3;
    # b9 (a 5) has none
    assert pick("mixed", pool(), 6, seed=1) == half + ["b6", "b1", "b3"]


def test_a_strategy_without_what_it_reads_is_refused_with_the_flag_that_gives_it():
    with pytest.raises(PickError, match="--model"):
        pick("typical", pool(embedding=None), 2)
    with pytest.raises(PickError, match="--model"):
        pick("margin", pool(probabilities=None), 2)
    with pytest.raises(PickError, match="unknown strategy"):
        pick("smart", pool(), 2)


def test_the_scoring_pass_reads_probabilities_and_a_unit_embedding_and_names_an_unreadable_photo(
        random_model_dir, synthetic_bins, tmp_path):
    from bincounter.modelcard import EMBEDDING_DIM
    from orchestrate.review.pool import score

    photos = sorted((synthetic_bins / "images").glob("*.jpg"))[:5]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    bins = [(p.stem, str(p)) for p in photos] + [("broken", str(broken))]
    scored = score(random_model_dir, bins, lambda p: open(p, "rb").read())
    assert scored.ids == tuple(p.stem for p in photos)
    assert scored.probabilities.shape == (5, 5) and np.allclose(scored.probabilities.sum(1), 1, atol=1e-5)
    assert scored.embedding.shape == (5, EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(scored.embedding, axis=1), 1, atol=1e-4)
    [(bad, why)] = scored.unreadable
    assert bad == "broken" and str(broken) in why
