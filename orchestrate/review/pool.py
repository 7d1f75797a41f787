"""The scoring pass behind ``review export --purpose training``: the audited bins, each with the
model's probabilities and embedding (its graph's two outputs, through the server's own session
and preprocessing, torch-free), as the ``picks.Pool`` the strategies choose from.

The audit's own outputs keep one probability per bin; margin needs every count's and typical
the embedding, so the photos are scored again here. A photo that cannot be read or decoded is
left out of the pool and named, never a crash.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bincounter.labels import DEFAULT_RANGE
from bincounter.serving.session import embed_batches
from orchestrate.review.picks import Pool
from orchestrate.review.tasks import Recount

log = logging.getLogger(__name__)
BATCH = 64
READERS = 16


@dataclass(frozen=True)
class Scored:
    """Row-aligned with the bins that could be scored; ``unreadable``: (bin id, reason)."""
    ids: tuple[str, ...]
    probabilities: np.ndarray
    embedding: np.ndarray
    counts: tuple[int, ...]
    unreadable: tuple[tuple[str, str], ...] = ()


def score(model_dir: Path, bins: Sequence[tuple[str, str]], read: Callable[[str], bytes],
          threads: int = 2) -> Scored:
    """``bins``: (bin id, photo) pairs; ``read`` turns a photo's location into its bytes."""
    # imported here: the CLI also runs in the training image (the monitor's job, compose's client),
    # which has no web server for serving.handler's error table to import
    from bincounter.serving.handler import Instance, ModelHandler

    handler = ModelHandler.load(model_dir, intra_op_threads=threads)
    ids, probs, embs, bad = [], [], [], []

    def load(item: tuple[str, str]):
        bin_id, photo = item
        try:
            return handler.preprocess([Instance(read(photo))])[0]
        except Exception as exc:  # any photo's failure is that photo's row, named below
            return f"{photo}: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(READERS) as readers:  # S3 photos: a GET each, several in flight
        for start in range(0, len(bins), BATCH):
            chunk = bins[start:start + BATCH]
            arrays = []
            for (bin_id, _), got in zip(chunk, readers.map(load, chunk)):
                if isinstance(got, str):
                    bad.append((bin_id, got))
                else:
                    ids.append(bin_id)
                    arrays.append(got)
            if arrays:
                p, e = embed_batches(handler.session, np.stack(arrays))
                probs.append(p)
                embs.append(e)
    for bin_id, why in bad:
        log.warning("scoring pass: bin %s left out of the pool: %s", bin_id, why)
    width = len(handler.classes)
    return Scored(tuple(ids), np.concatenate(probs) if probs else np.zeros((0, width)),
                  np.concatenate(embs) if embs else np.zeros((0, 0)), tuple(handler.classes), tuple(bad))


def pool_of(audited: Sequence[Recount], recount_list: Sequence[str], scored: Scored | None) -> Pool:
    """The pool of ``audited`` bins (those the scoring pass could read, when it ran), with each
    one's place in ``recount_list`` (the audit's recount order)."""
    rank = {bin_id: i for i, bin_id in enumerate(recount_list)}
    rows = {r.bin_id: r for r in audited}
    ids = scored.ids if scored is not None else tuple(rows)
    return Pool(ids, np.array([rows[i].expected or 0 for i in ids]),
                np.array([rank.get(i, np.inf) for i in ids], dtype=float),
                scored.counts if scored is not None else tuple(DEFAULT_RANGE.counts),
                None if scored is None else scored.probabilities, None if scored is None else scored.embedding)
