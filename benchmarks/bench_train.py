"""Model quality: the seed's recipe vs ours, side by side, on the real ABID sample.

    python -m benchmarks.bench_train [--data ../shared/data/abid-sample] [--budgets 12x112 6x112]

Every recipe trains through the real toolkit ``train`` (train.py) with the same
arch, images and held-out split (fixed by ``--split-seed``, independent of the
training seed), at each budget (epochs x image size), with two training seeds,
so the seed-to-seed spread is printed next to the difference between recipes.
Besides accuracy and RMSE it prints each model's verdict operating point on the
test split at the default targets (docs/verdicts.md): the auto
share, the false-match and the false-mismatch rate. The held-out images keep
the sample's natural count distribution; the photos with counts outside 1..5
join the training channel only (a recipe may learn from them, none is tested on them).

A lever is measured without editing this file: ``--variant noaug:augment=false``
runs ours with that change as ``noaug``. Every recipe trains at lr 0.05 (``COMMON``),
so ours is named ``ours-lr0.05``: train.py's defaults but for that rate. Runs from several invocations (other
seeds, another day) are tabulated together with ``--combine a/results.json b/results.json``.
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
from bincounter.training.hyperparameters import HyperparameterError, Hyperparameters
from devtools.local_toolkit import SAMPLE, install_code, run_train

COMMON = {"arch": "resnet18", "pretrained": "false", "batch-size": "32", "num-workers": "1",
          "lr": "0.05", "profile-steps": "0", "checkpoint-steps": "0", "log-interval": "50"}
# the seed: plain cross-entropy, SGD + cosine, no balancing, no augmentation
SEED_RECIPE = {"balanced-sampling": "false", "augment": "false", "label-smoothing": "0",
               "warmup-epochs": "0", "head": "softmax"}
OURS = {}  # train.py's defaults are the recipe under test, at COMMON's lr (below)
# ours is named for the one setting it does not ship with: the shipped lr 0.01 is meant for
# ImageNet-pretrained weights; a from-scratch resnet18 in 6-12 epochs needs 0.05 (0.01 loses
# 2.8 points on the same seed; benchmarks/README.md, "Recipe benchmark")
OURS_NAME = f"ours-lr{COMMON['lr']}"
# results files written before the name said so: their "ours" ran at lr 0.05 too
RENAMED = {"ours": OURS_NAME}
# variants measured to choose those defaults
RECIPES = {"seed": SEED_RECIPE, OURS_NAME: OURS,
           "balanced": {"balanced-sampling": "true"},
           "ordinal": {"head": "ordinal"},
           "ema": {"ema-decay": "0.99"},
           "outside": {"outside-counts": "classes"},
           "noaug": {"augment": "false"}}
SCORES = ("accuracy", "rmse", "auto_share", "false_match", "false_mismatch")
BETTER = {"accuracy": 1, "rmse": -1, "auto_share": 1}  # the scores a recipe must win, and which way


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE[,KEY=VALUE...]``: ours with those hyperparameters changed, measured under NAME.
    train.py's own parser checks them now, not when the run starts an hour into the benchmark."""
    name, _, settings = text.partition(":")
    pairs = dict(item.partition("=")[::2] for item in settings.split(",") if item)
    if not name or name in RECIPES or not pairs:
        raise argparse.ArgumentTypeError(f"{text!r}: want NAME:KEY=VALUE[,KEY=VALUE] with a new NAME")
    try:
        Hyperparameters.parse([f"--{key}={value}" for key, value in pairs.items()])
    except HyperparameterError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    return name, pairs


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
    outside = [s for s in scan_dataset(data, CountRange(0, 10_000))[0] if not 1 <= s.count <= 5]
    parts = {"test": samples[:n_test], "validation": samples[n_test:n_test + n_val],
             "training": samples[n_test + n_val:n_test + n_val + n_train] + outside}
    return {name: link_channel(part, work / "channels" / name) for name, part in parts.items()}


def train_once(work: Path, channels: dict, recipe: str, settings: dict, seed: int, budget: str) -> dict:
    epochs, size = budget.split("x")
    base = work / f"{budget}-{recipe}-seed{seed}"
    hps = {**COMMON, "epochs": epochs, "image-size": size, **settings, "seed": str(seed)}
    install_code(build_tree(base, channels, hps))
    t0 = time.monotonic()
    proc = run_train(base, log=base / "train.log")
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{recipe} seed {seed} ({budget}) failed; log in {base / 'train.log'}")
    report = json.loads((base / "output" / "data" / "evaluation.json").read_text())
    test, point = report["test"], report["model"]["verification"]["measured"]["test"]
    return {"budget": budget, "recipe": recipe, "settings": settings, "seed": seed,
            "accuracy": test["accuracy"], "rmse": test["rmse"],
            "auto_share": point["auto_share"], "false_match": point["false_match_rate"],
            "false_mismatch": point["false_mismatch_rate"], "asks": [point["false_match_n"],
                                                                       point["false_mismatch_n"]],
            "per_class": test["per_class"], "seconds": round(seconds, 1),
            "per_count_auto": {c: v["auto_share"] for c, v in point.get("per_expected", {}).items()},
            "data_wait_share": report["profile"]["step_timing"]["data_wait_share"]}


def mean(xs):
    return sum(xs) / len(xs)


def _pct(x: float) -> str:
    return f"{x * 100:.2f}"


def summarise(results: list[dict]) -> str:
    """Per budget: every run, each recipe's means and seed spread, and the verdict against the seed."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in results):
        runs = [r for r in results if r["budget"] == budget]
        lines += [f"## {budget} (epochs x px)", "",
                  "| recipe | seed | accuracy % | RMSE | auto share % | false match % | false mismatch % | s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['recipe']} | {r['seed']} | {_pct(r['accuracy'])} | {r['rmse']:.3f} | {_pct(r['auto_share'])} "
                  f"| {_pct(r['false_match'])} | {_pct(r['false_mismatch'])} | {r['seconds']:.0f} |" for r in runs]
        by = {name: [r for r in runs if r["recipe"] == name] for name in dict.fromkeys(r["recipe"] for r in runs)}
        stats = {name: {k: (mean([r[k] for r in rs]), max(r[k] for r in rs) - min(r[k] for r in rs))
                        for k in SCORES} for name, rs in by.items()}
        lines += ["", "| recipe | seeds | " + " | ".join(f"mean {k} (spread)" for k in SCORES) + " |",
                  "|---|---|" + "---|" * len(SCORES)]
        lines += [f"| {name} | {len(by[name])} | " + " | ".join(f"{s[k][0]:.4f} ({s[k][1]:.4f})" for k in SCORES)
                  + " |" for name, s in stats.items()]
        lines.append("")
        base = stats.get("seed")
        for name, s in stats.items():
            if base is None or name == "seed":
                continue
            gains = {k: (s[k][0] - base[k][0]) * sign for k, sign in BETTER.items()}
            # the noise a gain must beat: the larger seed-to-seed spread of the two recipes compared
            noise = {k: max(base[k][1], s[k][1]) for k in BETTER}
            wins = all(gains[k] > noise[k] for k in BETTER)
            lines.append(f"{name}'s gain over seed at {budget} (positive = better; RMSE lower): " + ", ".join(
                f"{k} {gains[k]:+.4f} (noise {noise[k]:.4f})" for k in BETTER)
                + (": better on all three, beyond the seed noise" if wins else ": NOT better on all three "
                   "beyond the seed noise"))
        n = runs[0]["asks"]
        lines += ["", f"(test split: {n[0]} asks one off for the false-match rate, {n[1]} correct asks for the "
                      "false-mismatch rate; auto share over both)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_train"))
    # 2410 + 300 + 600 = all 3,310 usable images of the sample
    p.add_argument("--train", type=int, default=2410, help="training images (counts 1..5)")
    p.add_argument("--val", type=int, default=300)
    p.add_argument("--test", type=int, default=600)
    p.add_argument("--budgets", nargs="+", default=["12x112", "6x112"],
                   help="EPOCHSxPIXELS each; 2 recipes x 2 seeds at both budgets: about an hour on 2 quiet cores")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--split-seed", type=int, default=2024)
    p.add_argument("--recipes", nargs="+", default=["seed", OURS_NAME], choices=list(RECIPES),
                   help=f"{OURS_NAME} = train.py's defaults at lr {COMMON['lr']} (every recipe's rate here); "
                        "the others are the variants they were chosen from")
    p.add_argument("--variant", type=parse_variant, action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="also run ours with these hyperparameters changed (a lever to measure), as NAME")
    p.add_argument("--combine", type=Path, nargs="+", metavar="RESULTS_JSON",
                   help="train nothing: print one table over these earlier runs' results.json")
    a = p.parse_args(argv)
    if a.combine:
        runs = [r for f in a.combine for r in json.loads(f.read_text())]
        print(summarise([{**r, "recipe": RENAMED.get(r["recipe"], r["recipe"])} for r in runs]))
        return 0
    names = [*a.recipes, *(name for name, _ in a.variant)]
    if len(set(names)) < len(names):
        p.error(f"each recipe and variant once: {' '.join(names)}")  # the table keys runs by name
    recipes = {**{name: RECIPES[name] for name in a.recipes}, **{name: {**OURS, **hps} for name, hps in a.variant}}
    if not (a.data / "metadata").is_dir():
        raise SystemExit(f"no ABID sample at {a.data}")
    shutil.rmtree(a.work, ignore_errors=True)
    channels = make_channels(a.data, a.work, a.train, a.val, a.test, a.split_seed)
    print(f"resnet18 from scratch at {', '.join(a.budgets)} (epochs x px), {a.train} train / {a.val} val / "
          f"{a.test} test images (split seed {a.split_seed}), seeds {a.seeds}, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    results = []
    for budget in a.budgets:
        for seed in a.seeds:
            for recipe, settings in recipes.items():
                r = train_once(a.work, channels, recipe, settings, seed, budget)
                print(f"  {budget} {recipe} seed {seed}: accuracy {_pct(r['accuracy'])} %, RMSE {r['rmse']:.3f}, "
                      f"auto share {_pct(r['auto_share'])} %, false match {_pct(r['false_match'])} %, "
                      f"false mismatch {_pct(r['false_mismatch'])} %, {r['seconds']:.0f} s", flush=True)
                results.append(r)
                (a.work / "results.json").write_text(json.dumps(results, indent=2))
    table = summarise(results)
    print(table)
    (a.work / "results.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
