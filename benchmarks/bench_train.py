"""Model quality: the seed's recipe vs ours, side by side, on the real ABID sample.

    python -m benchmarks.bench_train [--data ../shared/data/abid-sample] [--budget small]

Both recipes train through the real toolkit ``train`` (train.py) with the same
arch, image size, epochs, images and held-out split (fixed by ``--split-seed``,
independent of the training seed); each runs with two training seeds, so the
seed-to-seed spread is printed next to the difference between recipes. The
held-out images keep the sample's natural count distribution.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from bincounter.optml import build_tree
from devtools.local_toolkit import ROOT, install_code, run_train

COMMON = {"arch": "resnet18", "pretrained": "false", "batch-size": "32", "num-workers": "1",
          "lr": "0.05", "profile-steps": "0", "checkpoint-steps": "0", "log-interval": "50"}
# the seed: plain cross-entropy, SGD + cosine, no balancing, no augmentation
SEED_RECIPE = {"balanced-sampling": "false", "augment": "false", "label-smoothing": "0",
               "warmup-epochs": "0", "head": "softmax"}
OURS = {}  # train.py's defaults are the recipe under test
# variants measured to choose those defaults
RECIPES = {"seed": SEED_RECIPE, "ours": OURS,
           "balanced": {"balanced-sampling": "true"},
           "ordinal": {"head": "ordinal"}}


def link_channel(samples, out: Path) -> Path:
    """An ABID-layout folder of symlinks: the photos never leave ../shared."""
    for sub in ("images", "metadata"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for s in samples:
        (out / "images" / s.image_path.name).symlink_to(s.image_path.resolve())
        meta = s.image_path.parent.parent / "metadata" / f"{s.image_path.stem}.json"
        (out / "metadata" / meta.name).symlink_to(meta.resolve())
    return out


def make_channels(data: Path, work: Path, n_train: int, n_val: int, n_test: int, split_seed: int) -> dict:
    samples, _ = scan_dataset(data, CountRange(1, 5))
    samples = sorted(samples, key=lambda s: s.id)
    random.Random(split_seed).shuffle(samples)
    if len(samples) < n_train + n_val + n_test:
        raise SystemExit(f"{data} has {len(samples)} usable images; asked for {n_train + n_val + n_test}")
    parts = {"test": samples[:n_test], "validation": samples[n_test:n_test + n_val],
             "training": samples[n_test + n_val:n_test + n_val + n_train]}
    return {name: link_channel(part, work / "channels" / name) for name, part in parts.items()}


def train_once(work: Path, channels: dict, recipe: str, seed: int, hps: dict) -> dict:
    base = work / f"{recipe}-seed{seed}"
    install_code(build_tree(base, channels, {**COMMON, **hps, **RECIPES[recipe], "seed": str(seed)}))
    t0 = time.monotonic()
    proc = run_train(base, log=base / "train.log")
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{recipe} seed {seed} failed; log in {base / 'train.log'}")
    report = json.loads((base / "output" / "data" / "evaluation.json").read_text())
    test = report["test"]
    return {"recipe": recipe, "seed": seed, "accuracy": test["accuracy"], "rmse": test["rmse"],
            "per_class": test["per_class"], "seconds": round(seconds, 1),
            "data_wait_share": report["profile"]["step_timing"]["data_wait_share"]}


def mean(xs):
    return sum(xs) / len(xs)


def summarise(results: list[dict]) -> str:
    lines = ["| recipe | seed | accuracy % | RMSE | train s | data wait % |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['recipe']} | {r['seed']} | {r['accuracy'] * 100:.2f} | {r['rmse']:.3f} "
                     f"| {r['seconds']:.0f} | {r['data_wait_share'] * 100:.1f} |")
    names = list(dict.fromkeys(r["recipe"] for r in results))
    by = {name: [r for r in results if r["recipe"] == name] for name in names}
    stats = {name: {"acc": mean([r["accuracy"] for r in rs]), "rmse": mean([r["rmse"] for r in rs]),
                    "acc_spread": max(r["accuracy"] for r in rs) - min(r["accuracy"] for r in rs),
                    "rmse_spread": max(r["rmse"] for r in rs) - min(r["rmse"] for r in rs)}
             for name, rs in by.items()}
    noise_acc = max(s["acc_spread"] for s in stats.values())
    noise_rmse = max(s["rmse_spread"] for s in stats.values())
    lines += ["", "| recipe | mean accuracy % | mean RMSE | seed spread acc (pp) | seed spread RMSE |",
              "|---|---|---|---|---|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {s['acc'] * 100:.2f} | {s['rmse']:.3f} | {s['acc_spread'] * 100:.2f} "
                     f"| {s['rmse_spread']:.3f} |")
    lines.append("")
    base = stats.get("seed")
    for name, s in stats.items():
        if base is None or name == "seed":
            continue
        d_acc, d_rmse = s["acc"] - base["acc"], base["rmse"] - s["rmse"]
        lines.append(f"{name} - seed: accuracy {d_acc * 100:+.2f} pp (noise {noise_acc * 100:.2f} pp), "
                     f"RMSE {-d_rmse:+.3f} (noise {noise_rmse:.3f}); ratio accuracy "
                     f"{s['acc'] / max(base['acc'], 1e-9):.3f}, RMSE {s['rmse'] / max(base['rmse'], 1e-9):.3f}: "
                     + ("better on both, beyond the seed noise" if d_acc > noise_acc and d_rmse > noise_rmse
                        else "NOT better on both beyond the seed noise"))
    lines += ["", "| count | " + " | ".join(f"{n} acc % | {n} RMSE" for n in names) + " |",
              "|---|" + "---|---|" * len(names)]
    for c in ("1", "2", "3", "4", "5"):
        cells = []
        for rs in by.values():
            cells += [f"{mean([r['per_class'][c]['accuracy'] for r in rs]) * 100:.1f}",
                      f"{mean([r['per_class'][c]['rmse'] for r in rs]):.3f}"]
        n = results[0]["per_class"][c]["n"]
        lines.append(f"| {c} (n={n}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "abid-sample")
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_train"))
    # 2410 + 300 + 600 = all 3,310 usable images of the sample
    p.add_argument("--train", type=int, default=2410, help="training images")
    p.add_argument("--val", type=int, default=300)
    p.add_argument("--test", type=int, default=600)
    p.add_argument("--image-size", default="112", help="4 runs take about 40 min on 2 quiet cores")
    p.add_argument("--epochs", default="12")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--split-seed", type=int, default=2024)
    p.add_argument("--recipes", nargs="+", default=["seed", "ours"], choices=list(RECIPES),
                   help="ours = train.py's defaults; the others are the variants they were chosen from")
    a = p.parse_args(argv)
    if not (a.data / "metadata").is_dir():
        raise SystemExit(f"no ABID sample at {a.data}")
    shutil.rmtree(a.work, ignore_errors=True)
    channels = make_channels(a.data, a.work, a.train, a.val, a.test, a.split_seed)
    hps = {"image-size": a.image_size, "epochs": a.epochs}
    print(f"resnet18 from scratch, {a.image_size} px, {a.epochs} epochs, {a.train} train / {a.val} val / "
          f"{a.test} test images (split seed {a.split_seed}), seeds {a.seeds}, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    results = []
    for seed in a.seeds:
        for recipe in a.recipes:
            r = train_once(a.work, channels, recipe, seed, hps)
            print(f"  {recipe} seed {seed}: accuracy {r['accuracy'] * 100:.2f} %, RMSE {r['rmse']:.3f}, "
                  f"{r['seconds']:.0f} s", flush=True)
            results.append(r)
    table = summarise(results)
    print(table)
    (a.work / "results.json").write_text(json.dumps(results, indent=2))
    (a.work / "results.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
