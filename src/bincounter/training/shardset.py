"""A ``training`` channel of WebDataset shards (``bincounter.shards``: ``*.tar`` + their index),
read as a stream for training and by position for evaluation.

Everything a run plans comes from the index, never from the tars: each bin's split (its
shard's), count and photo's place in its tar. So labels, the golden set, the count range and
the split manifest work on shards exactly as on loose files (``data.load_splits``), and every
rank knows, before it reads a byte, how many batches each of its loader workers will make.

The train split is read as a stream (``ShardStream``): per epoch the seed orders the shards;
rank r takes shards r, r + world, ...; its loader worker w takes every W-th of those; each
worker reads its tars front to back (``webdataset``'s tar iterator: one sequential read per
shard, what S3 and FastFile serve best), keeps the bins the plan keeps, and draws from a
seeded shuffle buffer. A worker makes only whole batches (its last partial batch is left for
the epoch, a different remainder each epoch). The DataLoader takes the workers' batches in
turn from worker 0 (a worker that has none left is passed over), so a batch's place in the
epoch is known in advance: resuming at step k, each worker skips its batches before k without
decoding them (worker 0 playing the part of the worker whose turn k was), and the run
continues exactly where the checkpoint was: nothing repeated, nothing skipped, the same
weights as an uninterrupted run with the same loader workers (tests/training/test_shard_training.py).
With another number of loader workers the batches are other, equally random ones.

Validation, test and int8 calibration read single photos at their offsets
(``bincounter.shards.MemberPath``): they are small, and a ``File`` channel puts the tars on local disk.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from bincounter.metadata import NoUsableDataError, Sample
from bincounter.preprocess import ImageDecodeError, PreprocessSpec, decode_image, preprocess


log = logging.getLogger(__name__)
SHUFFLE_BUFFER = 1000  # bins a worker draws from: ~10 shards' worth at the sample's size, 1/150 of one at 150 MB


def by_shard(samples: list[Sample]) -> dict[Path, dict[str, int]]:
    """{tar: {bin id: count}} of the samples, shards in their index order."""
    out: dict[Path, dict[str, int]] = {}
    for s in samples:
        out.setdefault(s.image_path.tar, {})[s.id] = s.count
    return out


class ShardStream(IterableDataset):
    """The train split as a stream of whole batches (see the module's docstring); ``set_epoch``
    and ``full_batches`` as ``data.EpochSampler``, so the loop drives either alike."""

    def __init__(self, samples: list[Sample], spec: PreprocessSpec, to_index: Callable[[int], int],
                 batch_size: int, seed: int, workers: int, rank: int = 0, world: int = 1,
                 augment: Callable[[Image.Image, random.Random], Image.Image] | None = None,
                 buffer: int = SHUFFLE_BUFFER):
        self.shards = by_shard(samples)
        if len(self.shards) < world:
            raise NoUsableDataError(f"{len(self.shards)} train shards for {world} hosts x processes: every "
                                    "rank needs one; make smaller shards (orchestrate shards --shard-mb)")
        self.spec, self.to_index, self.augment, self.buffer = spec, to_index, augment, buffer
        self.batch_size, self.seed, self.workers, self.rank, self.world = batch_size, seed, max(1, workers), rank, world
        self.epoch, self.start_batch, self.num_batches = 0, 0, None

    def set_epoch(self, epoch: int, start_batch: int = 0, num_batches: int | None = None) -> None:
        self.epoch, self.start_batch, self.num_batches = epoch, start_batch, num_batches

    def _seed(self, *parts: int) -> int:
        # a tuple of ints hashes alike in every process (only str and bytes hashes are salted)
        return hash((self.seed, self.epoch, *parts)) & 0xFFFF_FFFF

    def worker_shards(self, worker: int) -> list[Path]:
        order = list(self.shards)
        random.Random(self._seed()).shuffle(order)
        return order[self.rank::self.world][worker::self.workers]

    def _batches_per_worker(self) -> list[int]:
        return [sum(len(self.shards[t]) for t in self.worker_shards(w)) // self.batch_size
                for w in range(self.workers)]

    def full_batches(self) -> int:
        return sum(self._batches_per_worker())

    def _turns(self) -> list[tuple[int, int]]:
        """(worker, its batch) in the order the DataLoader yields them: in turn, passing over
        a worker that has no batch left."""
        per = self._batches_per_worker()
        return [(w, r) for r in range(max(per, default=0)) for w in range(self.workers) if r < per[w]]

    def _bins(self, worker: int) -> Iterator[tuple[str, bytes, int]]:
        """(id, photo bytes, count) of this worker's shards, read front to back."""
        from webdataset.tariterators import tar_file_iterator

        for tar in self.worker_shards(worker):
            keep = self.shards[tar]
            with open(tar, "rb") as f:
                for member in tar_file_iterator(f, select_files=lambda name: name.endswith(".jpg")):
                    bin_id = member["fname"][: -len(".jpg")]
                    if bin_id in keep:
                        yield bin_id, member["data"], keep[bin_id]

    def _shuffled(self, worker: int) -> Iterator[tuple[str, bytes, int]]:
        rng, pool = random.Random(self._seed(self.rank, worker, 1)), []
        for item in self._bins(worker):
            pool.append(item)
            if len(pool) >= self.buffer:
                yield pool.pop(rng.randrange(len(pool)))
        rng.shuffle(pool)
        yield from pool

    def __iter__(self):
        info = get_worker_info()
        if info is not None and info.num_workers != self.workers:
            raise RuntimeError(f"planned for {self.workers} loader workers, run with {info.num_workers}")
        turns = self._turns()
        stop = len(turns) if self.num_batches is None else min(self.num_batches, len(turns))
        # the DataLoader asks its workers in turn from worker 0: resumed at batch k, worker 0 plays
        # the part of the worker whose turn k was, and the others follow in turn
        first = turns[self.start_batch][0] if self.start_batch < stop else 0
        worker = ((info.id if info is not None else 0) + first) % self.workers
        mine = {r for k, (w, r) in enumerate(turns[:stop]) if w == worker and k >= self.start_batch}
        if not mine:  # nothing left for this worker: no tar opened
            return
        last, batch = max(mine), []
        for n, (bin_id, data, count) in enumerate(self._shuffled(worker)):
            r = n // self.batch_size
            if r > last:
                return
            if r in mine:
                batch.append(self._item(bin_id, data, count, worker, r * self.batch_size + len(batch)))
                if len(batch) == self.batch_size:
                    yield _collate(batch)
                    batch = []

    def _item(self, bin_id: str, data: bytes, count: int, worker: int, position: int):
        try:
            image = decode_image(data, self.spec.image_size)
        except (OSError, ImageDecodeError, ValueError) as exc:
            log.warning("skipped %s at load time: %s", bin_id, exc)
            return None
        if self.augment is not None:  # seeded by the bin's place in the epoch, as EpochSampler's
            image = self.augment(image, random.Random(self._seed(self.rank, worker, 2, position)))
        return torch.from_numpy(preprocess(image, self.spec)), self.to_index(count)


def _collate(batch: list):
    kept = [b for b in batch if b is not None]
    return default_collate(kept) if kept else None
