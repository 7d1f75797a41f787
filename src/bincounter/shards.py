"""WebDataset shards of ABID bins: tar files of ``<bin_id>.jpg`` + ``<bin_id>.json`` pairs, about
``shard_mb`` each, train / validation / test in shards apart, and an index of what each holds.

Why: a training job that reads 535k small objects one request each spends its first hours on
requests; tars of ~150 MB are read sequentially (AWS's guidance for small files). The shard
writer runs wherever the bins are: on a folder here, or in each instance of a SageMaker
Processing job on its own part of a manifest (``orchestrate shards``), so everything a bin's
shard depends on is the bin itself:

- its split is a hash of the seed and its id (``split.split_of``), so instances never need to
  agree on anything;
- a part's bins are planned into shards in id order by their sizes before any is read, so a run
  again plans the same shards; a shard whose tar and its entry (``<shard>.tar.json``) both exist
  is finished and skipped (each is written to a temporary name, then moved);
- a bin whose photo or metadata cannot be read (missing, not a decodable image, no
  EXPECTED_QUANTITY) is listed in its shard's entry with the reason, never fatal; so every bin
  is in exactly one shard or in that list.

The index (``index-<part>.json``, and ``shards.json`` over every part in the folder) gives per
shard its bins with each one's count and photo's place in the tar, its counts per class, its
bytes and its sha256; ``scan_shards`` reads it back as ``Sample``s whose photos are tar members
(training, the compose client). Stdlib and Pillow only.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from bincounter.metadata import MetadataError, NoUsableDataError, Sample, parse_expected_quantity
from bincounter.split import DEFAULT_FRACTIONS, SPLITS, split_of

SHARDS_INDEX = "shards.json"
TAR_HEADER = 1024  # a member's header and padding, about: what a bin adds to a shard besides its bytes


@dataclass(frozen=True)
class BinSource:
    """One bin to pack: its id, its bytes on disk (for planning) and how to read it."""
    bin_id: str
    size: int
    photo: Callable[[], bytes]
    metadata: Callable[[], bytes]


def folder_bins(root: Path) -> list[BinSource]:
    """The bins of an ABID-layout folder (``images/<id>.jpg`` + ``metadata/<id>.json``); a photo
    without metadata, or metadata without a photo, is still a bin (its shard lists it unreadable)."""
    images = {p.stem: p for p in (root / "images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    metas = {p.stem: p for p in (root / "metadata").glob("*.json")}

    def size(p: Path | None) -> int:
        return p.stat().st_size if p is not None and p.is_file() else 0

    def reader(p: Path | None, what: str) -> Callable[[], bytes]:
        def read() -> bytes:
            if p is None:
                raise FileNotFoundError(f"no {what}")
            return p.read_bytes()
        return read

    return [BinSource(i, size(images.get(i)) + size(metas.get(i)), reader(images.get(i), "photo"),
                      reader(metas.get(i), "metadata")) for i in sorted(set(images) | set(metas))]


def plan(bins: Iterable[BinSource], shard_bytes: int, seed: int = 0,
         fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> dict[str, list[list[BinSource]]]:
    """Each split's bins, in id order, cut into shards of about ``shard_bytes``."""
    out: dict[str, list[list[BinSource]]] = {s: [] for s in SPLITS}
    by_split: dict[str, list[BinSource]] = {s: [] for s in SPLITS}
    for b in sorted(bins, key=lambda b: b.bin_id):
        by_split[split_of(b.bin_id, seed, fractions)].append(b)
    for split, members in by_split.items():
        current, size = [], 0
        for b in members:
            if current and size + b.size + 2 * TAR_HEADER > shard_bytes:
                out[split].append(current)
                current, size = [], 0
            current.append(b)
            size += b.size + 2 * TAR_HEADER
        if current:
            out[split].append(current)
    return out


def _check_photo(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.verify()


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> int:
    """Adds ``name``; returns where its bytes start in the tar (after its one 512-byte header:
    USTAR, and ids far under its 100-character name limit)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # no time: the same bins make the same bytes
    start = tar.offset + tarfile.BLOCKSIZE
    tar.addfile(info, io.BytesIO(data))
    return start


def _fetch(b: BinSource) -> tuple[bytes, bytes] | OSError:
    try:
        return b.photo(), b.metadata()
    except OSError as exc:
        return exc


def write_shard(path: Path, bins: list[BinSource], readers: int = 1) -> dict:
    """One tar (written to a temporary name, then moved) and its index entry beside it. The
    bins are fetched by ``readers`` threads (from S3 a bin is two GETs of ~30 ms: one at a
    time, an instance packs ~17 bins/s) and packed in their order."""
    tmp = path.with_name(path.name + ".tmp")
    counts: Counter = Counter()
    written, labels, photos, unreadable = [], [], [], []
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar, ThreadPoolExecutor(readers) as pool:
        for b, fetched in zip(bins, pool.map(_fetch, bins)):
            try:
                if isinstance(fetched, OSError):
                    raise fetched
                photo, raw = fetched
                count = parse_expected_quantity(raw)
                _check_photo(photo)
            except (OSError, MetadataError, ValueError, SyntaxError) as exc:  # PIL says SyntaxError for some
                unreadable.append({"bin_id": b.bin_id, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            photos.append([_member(tar, f"{b.bin_id}.jpg", photo), len(photo)])
            _member(tar, f"{b.bin_id}.json", json.dumps({"count": count, "metadata": json.loads(raw)},
                                                        sort_keys=True).encode())
            counts[count] += 1
            written.append(b.bin_id)
            labels.append(count)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    # per bin, aligned with "bins": its count, and its photo's [offset, size] in the tar (a
    # reader can plan and split a run, and open one photo, without reading the tars)
    entry = {"shard": path.name, "bins": written, "labels": labels, "photos": photos, "n": len(written),
             "counts": {str(c): counts[c] for c in sorted(counts)},
             "bytes": tmp.stat().st_size, "sha256": digest, "unreadable": unreadable}
    tmp.replace(path)
    side = path.with_name(path.name + ".json")
    side.with_name(side.name + ".tmp").write_text(json.dumps(entry), encoding="utf-8")
    side.with_name(side.name + ".tmp").replace(side)
    return entry


def write_part(bins: Iterable[BinSource], out: Path, part: str = "00000", shard_mb: float = 150, seed: int = 0,
               fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, done: dict[str, dict] | None = None,
               readers: int = 1) -> dict:
    """Every shard of one part (``<split>-<part>-<n>.tar``), skipping the finished ones (here, or
    in ``done``: {shard name: its entry}, e.g. a job's earlier output in S3); the part's index
    (``index-<part>.json``) with what was skipped and written."""
    out.mkdir(parents=True, exist_ok=True)
    shards, skipped = [], 0
    for split, groups in plan(bins, int(shard_mb * 1_000_000), seed, fractions).items():
        for n, group in enumerate(groups):
            path = out / f"{split}-{part}-{n:05d}.tar"
            side = path.with_name(path.name + ".json")
            if (done or {}).get(path.name):
                entry, skipped = done[path.name], skipped + 1
            elif path.is_file() and side.is_file():
                entry, skipped = json.loads(side.read_text()), skipped + 1
            else:
                entry = write_shard(path, group, readers)
            shards.append({"split": split, **entry})
    index = {"part": part, "seed": seed, "fractions": list(fractions), "shard_mb": shard_mb, "shards": shards,
             "skipped": skipped}
    _replace(out / f"index-{part}.json", json.dumps(index, indent=1))
    return index


def merge_indexes(out: Path) -> dict:
    """``shards.json``: every part's index in the folder, and the totals per split."""
    parts = [json.loads(p.read_text()) for p in sorted(out.glob("index-*.json"))]
    shards = [s for p in parts for s in p["shards"]]
    totals = {split: {"shards": 0, "bins": 0, "counts": Counter()} for split in SPLITS}
    for s in shards:
        t = totals[s["split"]]
        t["shards"] += 1
        t["bins"] += s["n"]
        t["counts"].update({k: v for k, v in s["counts"].items()})
    doc = {"parts": [p["part"] for p in parts], "shards": shards,
           "unreadable": [u for s in shards for u in s["unreadable"]],
           "totals": {k: {**v, "counts": dict(sorted(v["counts"].items()))} for k, v in totals.items()}}
    _replace(out / SHARDS_INDEX, json.dumps(doc, indent=1))
    return doc


def read_back(out: Path) -> dict[str, str]:
    """{bin id: shard} from the tars themselves (each bin's photo and label, in that order)."""
    found: dict[str, str] = {}
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            names = tar.getnames()
        for photo, label in zip(names[::2], names[1::2]):
            stem = photo.rsplit(".", 1)[0]
            if label != f"{stem}.json" or stem in found:
                raise ValueError(f"{path.name}: {photo} / {label} is not a bin's pair, or the bin is in two shards")
            found[stem] = path.name
    return found


@dataclass(frozen=True)
class MemberPath:
    """A photo inside a tar, read like a file (``read_bytes``): what a ``Sample`` points at
    when its channel holds shards."""
    tar: Path
    offset: int
    size: int
    name: str

    def read_bytes(self) -> bytes:
        with open(self.tar, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)

    def __str__(self) -> str:
        return f"{self.tar}#{self.name}"


def holds_shards(channel: Path) -> bool:
    return (channel / SHARDS_INDEX).is_file() or any(channel.glob("index-*.json"))


def scan_shards(channel: Path) -> dict[str, list[Sample]]:
    """Every bin of the channel's shards by split, in shard and tar order (from ``shards.json``,
    or every part's ``index-*.json`` when the parts were never merged)."""
    index = channel / SHARDS_INDEX
    docs = [json.loads(index.read_text())] if index.is_file() else [
        json.loads(p.read_text()) for p in sorted(channel.glob("index-*.json"))]
    out: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    missing = []
    for shard in (s for d in docs for s in d["shards"]):
        tar = channel / shard["shard"]
        if not tar.is_file():
            missing.append(shard["shard"])
            continue
        if "labels" not in shard:
            raise NoUsableDataError(f"{index}: shard {shard['shard']} lists no count per bin: made by an older "
                                    "`orchestrate shards`; make the shards again")
        out[shard["split"]] += [Sample(i, MemberPath(tar, off, size, f"{i}.jpg"), c)
                                for i, c, (off, size) in zip(shard["bins"], shard["labels"], shard["photos"])]
    if missing:
        raise NoUsableDataError(f"{channel}: the index names {len(missing)} shards the channel does not hold "
                                f"(first: {missing[0]})")
    return out


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
