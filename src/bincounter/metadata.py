"""Finding labelled bin images on disk.

Two layouts are understood:

* ABID: ``images/<id>.jpg`` (or ``bin-images/``) + ``metadata/<id>.json``,
  label = ``EXPECTED_QUANTITY``;
* class folders, as the seed used: ``1/<id>.jpg`` ... ``5/<id>.jpg``.

Counts outside the configured range are dropped on purpose and counted. A
missing or unreadable image or JSON is skipped with a warning naming the file.
Only when nothing usable is left does the scan fail (``NoUsableDataError``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bincounter.labels import DEFAULT_RANGE, CountRange

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_DIRS = ("images", "bin-images")


class MetadataError(ValueError):
    """A metadata JSON that cannot be read or carries no usable label."""


class NoUsableDataError(RuntimeError):
    """A dataset folder yielded no usable labelled image."""


@dataclass(frozen=True)
class Sample:
    id: str
    image_path: Path
    count: int


@dataclass
class ScanReport:
    root: str
    layout: str
    usable: int = 0
    out_of_range: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        dropped = sum(self.out_of_range.values())
        by_count = ", ".join(f"{k}: {v}" for k, v in sorted(self.out_of_range.items()))
        return (f"{self.root} ({self.layout} layout): {self.usable} usable, "
                f"{dropped} dropped as outside the count range ({by_count or 'none'}), "
                f"{len(self.skipped)} skipped as unreadable or incomplete")

    def to_dict(self) -> dict:
        return {"root": self.root, "layout": self.layout, "usable": self.usable,
                "out_of_range": {str(k): v for k, v in sorted(self.out_of_range.items())},
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped]}


def parse_expected_quantity(raw: bytes | str) -> int:
    """The label of one ABID metadata JSON document: its ``EXPECTED_QUANTITY``,
    a non-negative whole number (``true`` or ``3.0`` are not counts)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer literal of over 4300 digits
        raise MetadataError(f"unreadable metadata JSON: {str(exc)[:200]}") from exc
    if not isinstance(doc, dict) or "EXPECTED_QUANTITY" not in doc:
        raise MetadataError("metadata JSON has no EXPECTED_QUANTITY")
    qty = doc["EXPECTED_QUANTITY"]
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
        raise MetadataError(f"EXPECTED_QUANTITY is not a count: {qty!r}")
    return qty


def read_expected_quantity(path: Path) -> int:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MetadataError(f"unreadable metadata JSON: {exc}") from exc
    return parse_expected_quantity(raw)


def detect_layout(root: Path) -> str:
    if (root / "metadata").is_dir():
        return "abid"
    if any(p.is_dir() and p.name.isdigit() for p in root.iterdir()):
        return "class-folders"
    raise NoUsableDataError(
        f"{root}: neither an ABID layout (metadata/ + images/) nor class folders (1/ ... 5/)")


def _image_header_ok(path: Path) -> str | None:
    """Reason the file is not a readable image, or None. Reads the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
        return None if w > 0 and h > 0 else "empty image size"
    except OSError as exc:
        return f"unreadable image: {exc}"
    except Exception as exc:  # PIL raises assorted errors on garbage
        return f"unreadable image: {exc}"


def _abid_image_index(root: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for d in IMAGE_DIRS:
        if (root / d).is_dir():
            for p in (root / d).iterdir():
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    index.setdefault(p.stem, p)
    return index


def _scan_abid(root: Path, count_range: CountRange, report: ScanReport) -> list[Sample]:
    images = _abid_image_index(root)
    samples: list[Sample] = []
    labelled: set[str] = set()
    for meta in sorted((root / "metadata").glob("*.json")):
        sid = meta.stem
        labelled.add(sid)
        try:
            count = read_expected_quantity(meta)
        except MetadataError as exc:
            report.skipped.append((str(meta), str(exc)))
            continue
        if not count_range.contains(count):
            report.out_of_range[count] += 1
            continue
        image = images.get(sid)
        if image is None:
            report.skipped.append((str(meta), "no image for this metadata"))
            continue
        samples.append(Sample(sid, image, count))
    for sid in sorted(set(images) - labelled):
        report.skipped.append((str(images[sid]), "no metadata JSON for this image"))
    return samples


def _scan_class_folders(root: Path, count_range: CountRange, report: ScanReport) -> list[Sample]:
    samples: list[Sample] = []
    seen: set[str] = set()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not folder.name.isdigit():
            report.skipped.append((str(folder), "folder name is not a count"))
            continue
        count = int(folder.name)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not count_range.contains(count):
            report.out_of_range[count] += len(files)
            continue
        for image in files:
            if image.stem in seen:
                report.skipped.append((str(image), "id already seen in another class folder"))
                continue
            seen.add(image.stem)
            samples.append(Sample(image.stem, image, count))
    return samples


def scan_dataset(root: str | Path, count_range: CountRange = DEFAULT_RANGE,
                 check_images: bool = True) -> tuple[list[Sample], ScanReport]:
    """All usable samples under ``root`` (sorted by id) and what was left out."""
    root = Path(root)
    if not root.is_dir():
        raise NoUsableDataError(f"{root}: no such directory")
    layout = detect_layout(root)
    report = ScanReport(str(root), layout)
    scan = _scan_abid if layout == "abid" else _scan_class_folders
    samples = scan(root, count_range, report)
    if check_images:
        kept = []
        for s in samples:
            reason = _image_header_ok(s.image_path)
            if reason:
                report.skipped.append((str(s.image_path), reason))
            else:
                kept.append(s)
        samples = kept
    samples.sort(key=lambda s: s.id)
    report.usable = len(samples)
    for path, reason in report.skipped:
        log.warning("skipped %s: %s", path, reason)
    log.info("%s", report.summary())
    if not samples:
        raise NoUsableDataError(f"no usable labelled image: {report.summary()}")
    return samples, report
