"""Synthetic bins in the exact ABID layout: the embedded default dataset.

``python -m bincounter.synth OUT --n 500 --seed 0`` writes
``OUT/images/<id>.jpg`` and ``OUT/metadata/<id>.json`` (ABID's JSON schema),
each bin holding 1..5 visually distinct items on a cardboard-like floor, laid
on a 3x3 grid so that items never hide each other. Deterministic per seed.
It exists so that the demo and the tests never depend on real data.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

log = logging.getLogger(__name__)

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (240, 200, 30),
           (200, 60, 200), (30, 190, 200), (250, 130, 20), (240, 240, 240)]
NAMES = ["Stainless Water Bottle", "Board Book", "Phone Case", "Vitamin Gummies",
         "USB Cable", "Hand Cream", "Socks 3-Pack", "Tea Sampler"]


def _item_box(rng: random.Random, cell: int, size: int) -> tuple[int, int, int, int]:
    step = size / 3
    cx, cy = (cell % 3 + 0.5) * step, (cell // 3 + 0.5) * step
    w = rng.uniform(0.45, 0.8) * step
    h = rng.uniform(0.45, 0.8) * step
    cx += rng.uniform(-0.1, 0.1) * step
    cy += rng.uniform(-0.1, 0.1) * step
    return int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)


def draw_bin(rng: random.Random, count: int, size: int) -> tuple[Image.Image, list[int]]:
    """One bin photo with ``count`` items; returns it and each item's SKU index."""
    floor = tuple(int(c + rng.uniform(-15, 15)) for c in (150, 120, 85))
    image = Image.new("RGB", (size, size), floor)
    draw = ImageDraw.Draw(image)
    # the elastic straps across ABID bins: thin dark lines that are not items
    for _ in range(rng.randint(1, 3)):
        y = rng.randint(0, size)
        draw.line([(0, y), (size, y + rng.randint(-20, 20))], fill=(60, 50, 40), width=2)
    skus = [rng.randrange(len(COLOURS)) for _ in range(count)]
    for cell, sku in zip(rng.sample(range(9), count), skus):
        box = _item_box(rng, cell, size)
        colour = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in COLOURS[sku])
        if sku % 2:
            draw.ellipse(box, fill=colour, outline=(20, 20, 20), width=2)
        else:
            draw.rectangle(box, fill=colour, outline=(20, 20, 20), width=2)
    return image.filter(ImageFilter.GaussianBlur(0.6)), skus


def metadata_for(skus: list[int], image_name: str) -> dict:
    """The ABID metadata schema: one entry per SKU, quantities summing to the count."""
    data = {}
    for sku in skus:
        asin = f"SYNTH{sku:05d}"
        entry = data.setdefault(asin, {
            "asin": asin, "name": NAMES[sku], "normalizedName": NAMES[sku], "quantity": 0,
            "height": {"unit": "IN", "value": 1.0 + sku}, "length": {"unit": "IN", "value": 4.0},
            "width": {"unit": "IN", "value": 3.0}, "weight": {"unit": "pounds", "value": 0.5}})
        entry["quantity"] += 1
    return {"BIN_FCSKU_DATA": data, "EXPECTED_QUANTITY": len(skus), "image_fname": image_name}


def generate(out: str | Path, n: int = 500, seed: int = 0, size: int = 224,
             min_count: int = 1, max_count: int = 5) -> Path:
    """Write ``n`` bins with counts cycling evenly through min..max."""
    if not 1 <= min_count <= max_count <= 9:
        raise ValueError("synthetic bins hold 1..9 items")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    span = max_count - min_count + 1
    for i in range(n):
        sid = f"{i + 1:05d}"
        image, skus = draw_bin(rng, min_count + i % span, size)
        image.save(out / "images" / f"{sid}.jpg", quality=90)
        (out / "metadata" / f"{sid}.json").write_text(
            json.dumps(metadata_for(skus, f"{sid}.jpg"), indent=4), encoding="utf-8")
    log.info("wrote %d synthetic bins to %s", n, out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bincounter.synth", description=__doc__.split("\n")[0])
    p.add_argument("out", help="output folder (gets images/ and metadata/)")
    p.add_argument("--n", type=int, default=500, help="number of bins (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--max-count", type=int, default=5)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    generate(a.out, a.n, a.seed, a.size, a.min_count, a.max_count)


if __name__ == "__main__":
    main()
