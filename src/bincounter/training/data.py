"""Torch datasets over scanned samples, fed by the shared preprocessing."""

from __future__ import annotations

import logging
import random
from typing import Callable, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from bincounter.labels import CountRange
from bincounter.metadata import Sample
from bincounter.preprocess import ImageDecodeError, PreprocessSpec, decode_image, preprocess

log = logging.getLogger(__name__)


class BinDataset(Dataset):
    """(image tensor, class index) pairs; an image that fails to decode yields
    None, is logged with its path, and is dropped by ``collate_skipping``."""

    def __init__(self, samples: Sequence[Sample], spec: PreprocessSpec, count_range: CountRange,
                 augment: Callable[[Image.Image, random.Random], Image.Image] | None = None):
        self.samples = list(samples)
        self.spec = spec
        self.count_range = count_range
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]):
        # EpochSampler yields (index, augmentation seed): the same image gets the
        # same augmentation in a resumed run, whatever the worker layout
        i, aug_seed = key if isinstance(key, tuple) else (key, key)
        s = self.samples[i]
        try:
            image = decode_image(s.image_path.read_bytes(), self.spec.image_size)
        except (OSError, ImageDecodeError, ValueError) as exc:
            log.warning("skipped %s at load time: %s", s.image_path, exc)
            return None
        if self.augment is not None:
            image = self.augment(image, random.Random(aug_seed))
        x = torch.from_numpy(preprocess(image, self.spec))
        return x, self.count_range.to_index(s.count)


class EpochSampler(Sampler):
    """The order of one epoch, a pure function of (seed, epoch): shuffled or
    class-balanced draws, this rank's shard (DistributedSampler's padded
    ``rank::world`` layout), capped at ``num_batches`` so every rank takes the
    same number of steps, and started at ``start_batch`` to resume mid-epoch.
    Yields (index, augmentation seed) pairs."""

    def __init__(self, labels: Sequence[int], batch_size: int, seed: int, shuffle: bool = True,
                 balanced: bool = False, rank: int = 0, world: int = 1, pad: bool = True):
        self.labels, self.batch_size, self.seed = list(labels), batch_size, seed
        self.shuffle, self.balanced, self.rank, self.world, self.pad = shuffle, balanced, rank, world, pad
        self.epoch, self.start_batch, self.num_batches = 0, 0, None

    def set_epoch(self, epoch: int, start_batch: int = 0, num_batches: int | None = None) -> None:
        self.epoch, self.start_batch, self.num_batches = epoch, start_batch, num_batches

    def _order(self) -> list[int]:
        n = len(self.labels)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.balanced:
            per_class = torch.bincount(torch.tensor(self.labels)).double()
            weights = 1.0 / per_class[torch.tensor(self.labels)]
            order = torch.multinomial(weights, n, replacement=True, generator=g).tolist()
        else:
            order = torch.randperm(n, generator=g).tolist() if self.shuffle else list(range(n))
        if self.world > 1:
            if self.pad:
                order += order[: (-n) % self.world]
            order = order[self.rank::self.world]
        return order

    def full_batches(self) -> int:
        """Batches in a whole epoch of this rank, before any cap."""
        return -(-len(self._order()) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        stop = len(order) if self.num_batches is None else min(len(order), self.num_batches * self.batch_size)
        base = (self.seed * 100_003 + self.epoch) * 1_000_003
        for pos in range(self.start_batch * self.batch_size, stop):
            yield order[pos], base + pos * self.world + self.rank

    def __len__(self) -> int:
        n = len(self._order())
        stop = n if self.num_batches is None else min(n, self.num_batches * self.batch_size)
        return max(0, stop - self.start_batch * self.batch_size)


def collate_skipping(batch):
    batch = [b for b in batch if b is not None]
    return default_collate(batch) if batch else None


def make_loader(dataset: BinDataset, batch_size: int, shuffle: bool, num_workers: int,
                seed: int, sampler=None, pin_memory: bool = False) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, num_workers=num_workers, collate_fn=collate_skipping,
                      generator=g, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)
