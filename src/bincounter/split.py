"""Deterministic stratified train / validation / test split, with a manifest.

Each count's ids are sorted, shuffled with a seeded generator of their own and
cut by the fractions, so a split depends only on (ids, counts, seed, fractions)
and never on file-system order.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Iterable

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def stratified_split(labels: dict[str, int], seed: int = 0,
                     fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> dict[str, list[str]]:
    """Map each id (key of ``labels``, value = count) to exactly one split."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1: {fractions}")
    by_count: dict[int, list[str]] = defaultdict(list)
    for sid, count in labels.items():
        by_count[count].append(sid)
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    for count in sorted(by_count):
        ids = sorted(by_count[count])
        random.Random(f"{seed}:{count}").shuffle(ids)
        n = len(ids)
        n_val = round(n * fractions[1])
        n_test = round(n * fractions[2])
        n_train = n - n_val - n_test
        out["train"] += ids[:n_train]
        out["validation"] += ids[n_train:n_train + n_val]
        out["test"] += ids[n_train + n_val:]
    return {name: sorted(ids) for name, ids in out.items()}


def write_manifest(path: str | Path, split: dict[str, list[str]], labels: dict[str, int],
                   seed: int, fractions: Iterable[float], source: str = "") -> None:
    doc = {
        "seed": seed,
        "fractions": dict(zip(SPLITS, fractions)),
        "source": source,
        "counts": {name: _histogram(ids, labels) for name, ids in split.items()},
        "splits": {name: [{"id": i, "count": labels[i]} for i in ids] for name, ids in split.items()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def read_manifest(path: str | Path) -> dict[str, list[str]]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: [e["id"] for e in doc["splits"][name]] for name in SPLITS}


def _histogram(ids: list[str], labels: dict[str, int]) -> dict[str, int]:
    hist: dict[str, int] = defaultdict(int)
    for i in ids:
        hist[str(labels[i])] += 1
    return dict(sorted(hist.items()))


def split_of(bin_id: str, seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """A bin's split from its id alone (a hash of the seed and the id, uniform in 0..1, cut by the
    fractions): what the shard writer uses, whose instances each see only their part of the bins."""
    import hashlib

    u = int.from_bytes(hashlib.sha256(f"{seed}:{bin_id}".encode()).digest()[:8], "big") / 2 ** 64
    return SPLITS[0] if u < fractions[0] else SPLITS[1] if u < fractions[0] + fractions[1] else SPLITS[2]
