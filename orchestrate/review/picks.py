"""Which bins people count to teach the model (``review export --purpose training``): one small
function per strategy, each a deterministic function of a ``Pool`` (what an audit and its
scoring pass know of each unlabelled bin), the budget B and a seed.

Why not simply the recount list: with a weak model and a small budget, the bins it doubts most
are skewed (on the sample mostly bins recorded as 1) and training on them pulls the model that
way; picking typical, well-spread bins with balanced counts wins at small budgets (the
"cold start" of active learning: Hacohen et al., ICML 2022, TypiClust). `make bench-review`
measures every strategy here against random (docs/reviews.md "Which bins teach").

A strategy returns row indices into the pool, at most B, in pick order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# TypiClust's neighbourhood for typicality: the mean distance to a bin's 20 nearest neighbours
TYPICAL_NEIGHBOURS = 20


class PickError(ValueError):
    """A strategy that cannot run on this pool (no probabilities, no embedding, unknown name)."""


@dataclass(frozen=True)
class Pool:
    """The unlabelled bins a strategy may pick from, row-aligned.

    ``counts``: the count of each probability column; ``recorded``: each bin's recorded count
    (0 where none); ``recount_rank``: its place in the audit's recount order (mismatches most
    certain first, then reviews), ``inf`` for a bin not on the list; ``probabilities`` (N x
    classes) and ``embedding`` (N x EMBEDDING_DIM) from the model's graph, None where not scored."""
    ids: tuple[str, ...]
    recorded: np.ndarray
    recount_rank: np.ndarray
    counts: tuple[int, ...] = (1, 2, 3, 4, 5)
    probabilities: np.ndarray | None = None
    embedding: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def classes(self) -> np.ndarray:
        """The count each bin would teach as, for the quotas: its recorded count, or the model's
        count where nothing is recorded (the person's count is not known when picking)."""
        known = np.isin(self.recorded, self.counts)
        if known.all() or self.probabilities is None:
            return self.recorded
        model = np.asarray(self.counts)[self.probabilities.argmax(1)]
        return np.where(known, self.recorded, model)

    def need(self, what: str, strategy: str) -> np.ndarray:
        value = getattr(self, what)
        if value is None:
            raise PickError(f"strategy {strategy!r} needs each bin's {what} from the model's graph: "
                            "give --model (a model exported with an embedding output) for the scoring pass")
        return value


def quota(order: np.ndarray, classes: np.ndarray, counts: tuple[int, ...], budget: int) -> list[int]:
    """Walk ``order`` (row indices, best first) taking a bin while its class has room: each count
    gets B // len(counts) places (the remainder to the first counts). Places a count cannot fill
    (too few of its bins) go to the best remaining bins of any count, in order."""
    per = {c: budget // len(counts) + (i < budget % len(counts)) for i, c in enumerate(counts)}
    taken, rest = [], []
    for i in order:
        c = int(classes[i])
        if per.get(c, 0) > 0:
            per[c] -= 1
            taken.append(int(i))
        else:
            rest.append(int(i))
    return taken + rest[: max(0, budget - len(taken))]


def random(pool: Pool, budget: int, seed: int) -> list[int]:
    """B bins drawn uniformly, by the seed."""
    return [int(i) for i in np.random.default_rng(seed).permutation(len(pool))[:budget]]


def recount_head(pool: Pool, budget: int, seed: int) -> list[int]:
    """The head of the recount list: what a person would recount to fix the inventory."""
    order = np.lexsort((np.arange(len(pool)), pool.recount_rank))
    return [int(i) for i in order[:budget] if np.isfinite(pool.recount_rank[i])]


def per_count(pool: Pool, budget: int, seed: int) -> list[int]:
    """The recount order with a quota per count, then the bins off the list in id order."""
    order = np.lexsort((np.asarray(pool.ids), pool.recount_rank))
    return quota(order, pool.classes(), pool.counts, budget)


def margin(pool: Pool, budget: int, seed: int) -> list[int]:
    """Smallest margin between the model's two likeliest counts first, with the quota per count."""
    p = np.sort(pool.need("probabilities", "margin"), axis=1)
    order = np.lexsort((np.asarray(pool.ids), p[:, -1] - p[:, -2]))
    return quota(order, pool.classes(), pool.counts, budget)


def typical(pool: Pool, budget: int, seed: int) -> list[int]:
    """TypiClust: k-means on the embedding into B clusters; from each, its most typical bin (the
    least mean distance to its nearest neighbours in the cluster); the largest clusters first."""
    from sklearn.cluster import KMeans

    x = pool.need("embedding", "typical").astype(np.float64)
    k = min(budget, len(pool))
    if k == 0:
        return []
    labels = KMeans(n_clusters=k, random_state=seed, n_init=1).fit(x).labels_
    picks = []
    for cluster in np.argsort(-np.bincount(labels, minlength=k), kind="stable"):
        members = np.flatnonzero(labels == cluster)
        if len(members) == 0:
            continue
        picks.append(int(members[np.argmin(_spread(x[members]))]))
    return picks


def _spread(x: np.ndarray) -> np.ndarray:
    """Each point's mean distance to its TYPICAL_NEIGHBOURS nearest others (memory: points x
    neighbours, never points x points: a cluster of a big pool holds thousands)."""
    from sklearn.neighbors import NearestNeighbors

    if len(x) == 1:
        return np.zeros(1)
    n = min(TYPICAL_NEIGHBOURS + 1, len(x))
    distances, _ = NearestNeighbors(n_neighbors=n).fit(x).kneighbors(x)
    return distances[:, 1:].mean(axis=1)  # the first neighbour is the point itself


def mixed(pool: Pool, budget: int, seed: int) -> list[int]:
    """Half random, half margin (of the bins random did not take)."""
    half = random(pool, budget // 2, seed)
    rest = np.setdiff1d(np.arange(len(pool)), half)
    sub = Pool(tuple(pool.ids[i] for i in rest), pool.recorded[rest], pool.recount_rank[rest], pool.counts,
               None if pool.probabilities is None else pool.probabilities[rest])
    return half + [int(rest[i]) for i in margin(sub, budget - len(half), seed)]


STRATEGIES: dict[str, Callable[[Pool, int, int], list[int]]] = {
    "random": random, "recount-head": recount_head, "per-count": per_count, "margin": margin,
    "typical": typical, "mixed": mixed}


# `review export --purpose training`'s default, chosen by `make bench-review` (docs/reviews.md "Which bins
# teach", 2026-12-07): no strategy beat random beyond the seed spread at 100, 300 or 600 bins, and random
# needs no model
DEFAULT_STRATEGY = "random"


def pick(strategy: str, pool: Pool, budget: int, seed: int = 0) -> list[str]:
    """The ids ``strategy`` picks from ``pool``: at most B, in pick order, never one twice."""
    if strategy not in STRATEGIES:
        raise PickError(f"unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    if budget < 0:
        raise PickError(f"budget {budget} < 0")
    rows = STRATEGIES[strategy](pool, budget, seed)
    assert len(set(rows)) == len(rows) <= budget, f"{strategy} picked a bin twice or past the budget"
    return [pool.ids[i] for i in rows]
