"""Torch datasets over scanned samples, fed by the shared preprocessing."""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate

from bincounter.labels import CountRange
from bincounter.metadata import Sample
from bincounter.preprocess import ImageDecodeError, PreprocessSpec, decode_image, preprocess

log = logging.getLogger(__name__)


class BinDataset(Dataset):
    """(image tensor, class index) pairs; an image that fails to decode yields
    None, is logged with its path, and is dropped by ``collate_skipping``."""

    def __init__(self, samples: Sequence[Sample], spec: PreprocessSpec, count_range: CountRange,
                 augment: Callable[[Image.Image], Image.Image] | None = None):
        self.samples = list(samples)
        self.spec = spec
        self.count_range = count_range
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        try:
            image = decode_image(s.image_path.read_bytes(), self.spec.image_size)
        except (OSError, ImageDecodeError, ValueError) as exc:
            log.warning("skipped %s at load time: %s", s.image_path, exc)
            return None
        if self.augment is not None:
            image = self.augment(image)
        x = torch.from_numpy(preprocess(image, self.spec))
        return x, self.count_range.to_index(s.count)


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
