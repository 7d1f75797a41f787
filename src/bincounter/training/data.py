"""The data side of a run: splits, torch datasets over them (fed by the shared
preprocessing), epoch samplers, and the loaders, sharded across ranks."""

from __future__ import annotations

import logging
import random
from typing import Callable, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from bincounter.labels import CountRange
from bincounter.metadata import NoUsableDataError, Sample, scan_dataset
from bincounter.preprocess import ImageDecodeError, PreprocessSpec, decode_image, preprocess
from bincounter.shards import MemberPath, holds_shards, scan_shards
from bincounter.split import SPLITS, stratified_split, write_manifest
from bincounter.training.distributed import World
from bincounter.training.environment import TrainingEnv
from bincounter.training.hyperparameters import HyperparameterError
from bincounter.training.recipe import Head, augment_bin
from bincounter.training.relabel import Provenance, apply_labels, drop_golden, golden_ids
from bincounter.training.shardset import ShardStream

log = logging.getLogger(__name__)
SHARDED = "ShardedByS3Key"
SPLIT_MANIFEST = "split.json"
# every count a photo can hold: what is scanned when those outside the range train too
ALL_COUNTS = CountRange(0, 1_000_000)


class BinDataset(Dataset):
    """(image tensor, class index) pairs; an image that fails to decode yields
    None, is logged with its path, and is dropped by ``collate_skipping``."""

    def __init__(self, samples: Sequence[Sample], spec: PreprocessSpec, to_index: Callable[[int], int],
                 augment: Callable[[Image.Image, random.Random], Image.Image] | None = None):
        self.samples = list(samples)
        self.spec = spec
        self.to_index = to_index  # count -> class (Head.index, or CountRange.to_index)
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
        return x, self.to_index(s.count)


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


def make_loader(dataset: BinDataset, batch_size: int, num_workers: int, seed: int,
                sampler: EpochSampler, pin_memory: bool = False) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_skipping,
                      generator=g, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)


def load_splits(env: TrainingEnv, count_range: CountRange, write: bool,
                outside: bool = False) -> tuple[dict[str, list[Sample]], Provenance]:
    """train / validation / test samples: the given channels, else carved from ``training``
    by the seeded stratified split (written to ``output/data/split.json`` when ``write``),
    and "calibration" when that channel is given (its photos never train).
    With ``outside``, the training channel's photos with counts outside ``count_range``
    join the train split (never validation or test: every metric is on the served counts).
    A ``labels`` channel replaces recorded counts with people's (``relabel``); a ``golden``
    channel's bins are left out of every split. Returns the splits and that provenance."""
    hp = env.hp
    if "training" not in env.channels:
        raise NoUsableDataError(f"no 'training' channel (channels found: {sorted(env.channels)})")
    prov = Provenance()
    # with people's counts, a bin recorded outside the range may hold a count inside it
    scan_all = outside or "labels" in env.channels
    shards = scan_shards(env.channels["training"]) if holds_shards(env.channels["training"]) else None
    if shards is not None:  # the shards' index says each bin's split and count
        scanned = [s for name in SPLITS for s in shards[name] if scan_all or count_range.contains(s.count)]
        if not scanned:
            raise NoUsableDataError(f"{env.channels['training']}: no bin in the shards has a count in {count_range}")
        log.info("training channel of shards: %s", ", ".join(
            f"{name} {len({s.image_path.tar for s in shards[name]})} shards" for name in SPLITS))
    else:
        scanned, _ = scan_dataset(env.channels["training"], ALL_COUNTS if scan_all else count_range)
    golden = golden_ids(env.channels["golden"], prov) if "golden" in env.channels else frozenset()
    if "labels" in env.channels:
        scanned = apply_labels(scanned, env.channels["labels"], count_range, outside, prov, golden)
    pools = {"train": [s for s in scanned if count_range.contains(s.count)],
             "extra": [s for s in scanned if not count_range.contains(s.count)] if outside else []}
    pools.update({name: scan_dataset(env.channels[name], count_range)[0]
                  for name in ("validation", "test", "calibration") if name in env.channels})
    drop_golden(pools, golden, prov)
    train, extra = pools.pop("train"), pools.pop("extra")
    calibration = pools.pop("calibration", None)
    given = pools
    if calibration is not None:
        # the thresholds' promise needs photos the model never trained on
        held = {s.id for s in calibration}
        leaked = sum(s.id in held for s in train)
        train = [s for s in train if s.id not in held]
        if leaked:
            log.warning("calibration channel: %d of its %d photos are also in the training channel; "
                        "they do not train", leaked, len(calibration))
    fv = 0.0 if "validation" in given else hp.val_fraction
    ft = 0.0 if "test" in given else hp.test_fraction
    labels = {s.id: s.count for s in train}
    if shards is not None:  # the shards' own split; a given validation or test channel's bins train instead
        home = {s.id: "train" if name in given else name for name in SPLITS for s in shards[name]}
        split = {name: [s.id for s in train if home[s.id] == name] for name in SPLITS}
        fv, ft = (len(split[n]) / len(train) for n in SPLITS[1:])
    else:
        split = stratified_split(labels, hp.seed, (1 - fv - ft, fv, ft))
    by_id = {s.id: s for s in train}
    splits = {"train": [by_id[i] for i in split["train"]] + extra,
              "validation": given.get("validation") or [by_id[i] for i in split["validation"]],
              "test": given.get("test") or [by_id[i] for i in split["test"]]}
    if calibration is not None:  # temperature and thresholds are fitted on it instead of validation
        splits["calibration"] = calibration
    for name, samples in splits.items():
        if not samples:
            raise NoUsableDataError(f"the {name} split is empty: give more data or a {name} channel")
        labels.update({s.id: s.count for s in samples})
    if write:
        write_manifest(env.output_data_dir / SPLIT_MANIFEST,
                       {k: [s.id for s in v] for k, v in splits.items()}, labels, hp.seed,
                       (1 - fv - ft, fv, ft), source=str(env.channels["training"]))
    log.info("split: %s%s", {k: len(v) for k, v in splits.items()},
             f" (train includes {len(extra)} photos with counts outside the range)" if extra else "")
    return splits, prov


def make_loaders(env: TrainingEnv, splits: dict[str, list[Sample]], spec: PreprocessSpec,
                 head: Head, world: World,
                 pin_memory: bool = False) -> tuple[dict[str, DataLoader], dict[str, EpochSampler]]:
    """A loader per split, fed by an ``EpochSampler``: the train one augmented (and
    balanced) as asked; every split sharded across ranks unless its channel is
    already sharded by S3 key (each host then holds its own part)."""
    hp = env.hp
    # the host's CPUs are shared by its training processes
    loader_workers = hp.num_workers if hp.num_workers is not None else max(0, min(8, env.cpus_per_process - 1))
    loaders, samplers = {}, {}
    for name, samples in splits.items():
        channel = "training" if name == "train" or name not in env.channels else name
        rank, size = (0, 1) if env.distribution.get(channel) == SHARDED else (world.rank, world.size)
        train = name == "train"
        if train and samples and isinstance(samples[0].image_path, MemberPath):
            if hp.balanced_sampling:
                raise HyperparameterError("balanced-sampling draws from every bin at random: a channel of shards "
                                          "is read as a stream; train without it, or from loose files")
            stream = ShardStream(samples, spec, head.index, hp.batch_size, hp.seed, loader_workers, rank, size,
                                 augment=augment_bin if hp.augment else None)
            # not persistent: each epoch's workers start from the stream's epoch and resume point
            samplers[name], loaders[name] = stream, DataLoader(stream, batch_size=None, num_workers=loader_workers,
                                                               pin_memory=pin_memory)
            continue
        sampler = EpochSampler([head.index(s.count) for s in samples], hp.batch_size,
                               hp.seed, shuffle=train, balanced=train and hp.balanced_sampling,
                               rank=rank, world=size, pad=train)
        dataset = BinDataset(samples, spec, head.index, augment=augment_bin if train and hp.augment else None)
        samplers[name] = sampler
        loaders[name] = make_loader(dataset, hp.batch_size, num_workers=loader_workers, seed=hp.seed,
                                    sampler=sampler, pin_memory=pin_memory)
    return loaders, samplers
