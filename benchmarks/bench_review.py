"""Which bins teach, and what recounts fix: every picking strategy against random, on the real sample.

    python -m benchmarks.bench_review                                    # make bench-review (~20 min: random, margin, B 300)
    python -m benchmarks.bench_review --budgets 100 300 600 --seeds 0 1 2 3 \\
        --strategies random recount-head per-count margin typical mixed \\
        --arms grid recounts calibration cleaning --clean-seeds 0 1       # everything (hours)

The sample's photos in counts 1-5 are split once (``--split-seed``): an untouched test split
(600), a validation split (300), and a pool (2,410). Per training seed:

1. **base**: a model trained through the real toolkit on the first ``--base`` bins of the pool;
   it scores the rest of the pool (the candidates) with its served graph: every probability,
   the embedding, the card's verdicts against the records and the audit's recount order;
2. **grid**: each strategy (``orchestrate.review.picks``) picks B candidates per budget; their
   true counts reach training the product's way (a ``labels`` channel, purpose ``training``),
   and each arm retrains from scratch on base + its B. Scored on the test split: accuracy,
   RMSE, the share answered without a person and per count at the card's default targets;
3. **recounts**: R recount answers (``--recounts``, the head of the recount list) beside the
   first budget's random training picks: trained as they are, capped per count at the
   training data's count mix, or left out: whether a recount answer should teach;
4. **cleaning** (``--noise``): the pool's records corrupted (a stated share, one count off, by
   the seed); a base model trained on noisy records audits the candidates; the wrong records
   found among the first B recounted, recount order against random, and the wrong records left;
   then the whole pool retrained on the noisy records, and with the found ones fixed by
   people's counts (recount order, random) at ``--clean-budget``;
5. **calibration**: the base model's thresholds fitted again on 300 / 600 / 1,000 recounted
   candidates (``--calibration``) and measured on the test split, per count.

The spread across seeds is printed beside every difference: a strategy's difference to random
is reported as beyond the spread when its mean exceeds two standard errors of the per-seed
differences (a paired comparison: the same base model and test split).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import results_args, review_arms as arms
from benchmarks.bench_train import link_channel, train_once
from benchmarks.review_report import report
from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from devtools.local_toolkit import SAMPLE
from orchestrate.review.picks import STRATEGIES, pick

# `make bench-review`'s default (~20 min on 2 quiet cores at 6x112): the shipped strategy against the one to switch to
QUICK = {"budgets": [300], "seeds": [0, 1, 2, 3], "strategies": ["random", "margin"]}


def lean(run: Path) -> None:
    """A finished arm's run folder without its checkpoints and model (~270 MB an arm; the
    full grid is ~90 arms): its log and evaluation stay."""
    for sub in ("checkpoints", "model"):
        shutil.rmtree(run / sub, ignore_errors=True)


def arm(a, runs: Path, channels: dict, name: str, seed: int) -> dict:
    r = train_once(runs, channels, name, {}, seed, a.budget)
    lean(runs / f"{a.budget}-{name}-seed{seed}")
    return r


def base_model(a, seed: int, work: Path, fixed: dict, base: list, candidates: list, out: list[dict]):
    """The seed's base model, and its scored pool of the candidates."""
    runs = work / f"seed{seed}"
    first = train_once(runs, {**fixed, "training": link_channel(base, runs / "base-channel")}, "base", {}, seed,
                       a.budget)
    out.append(first | {"strategy": "base", "B": 0})
    model = runs / f"{a.budget}-base-seed{seed}" / "model"
    return model, arms.scored_pool(model, candidates, {s.id: s.count for s in candidates})[0]


def grid(a, b: int, seed: int, work: Path, fixed: dict, base: list, candidates: list, pool, out: list[dict],
         save) -> None:
    """Every strategy's retrain at budget ``b``, appended to ``out`` as each ends."""
    runs, by_id = work / f"seed{seed}", {s.id: s for s in candidates}
    for strategy in a.strategies:
        picked = [by_id[i] for i in pick(strategy, pool, b, seed)]
        name = f"{strategy}-B{b}"
        channels = {**fixed, "training": link_channel(base + picked, runs / f"{name}-channel"),
                    "labels": arms.labels_channel(picked, runs / f"{name}-labels", "training", strategy)}
        r = arm(a, runs, channels, name, seed) | {"strategy": strategy, "B": b}
        r["picked_counts"] = {str(c): sum(s.count == c for s in picked) for c in range(1, 6)}
        out.append(r)
        save()
        print(f"seed {seed} {name}: accuracy {r['accuracy']:.1%}", flush=True)


def recounts(a, seed: int, work: Path, fixed: dict, base: list, candidates: list, pool, done: list[dict]) -> list[dict]:
    """Whether recount answers should train alike, capped or not at all: base + B random
    training picks, and R recount-purpose labels from the head of the recount list (the
    training picks left out) added as they are, or capped per count at the training data's
    count mix (the head of the list is mostly 1s), or not at all (the grid's random arm at that
    budget, when ``done`` holds it: the same run)."""
    runs, by_id = work / f"recounts-seed{seed}", {s.id: s for s in candidates}
    taught = [by_id[i] for i in pick("random", pool, a.budgets[0], seed)]
    head = [by_id[i] for i in pick("recount-head", pool, len(pool), seed) if i not in {s.id for s in taught}]
    recounted = head[:a.recounts]
    mix = np.bincount([s.count for s in base + taught], minlength=6)[1:] / len(base + taught)
    room = {c: round(a.recounts * share) for c, share in zip(range(1, 6), mix)}
    capped = []
    for s in recounted:  # in recount order, while the person's count has room
        if room[s.count] > 0:
            room[s.count] -= 1
            capped.append(s)
    out = [r | {"variant": "none", "recount_counts": {str(c): 0 for c in range(1, 6)}} for r in done
           if r["seed"] == seed and r["strategy"] == "random" and r["B"] == len(taught)]
    for variant, extra in (("none", []), ("all", recounted), ("capped", capped))[len(out):]:
        channels = {**fixed, "training": link_channel(base + taught + extra, runs / f"{variant}-channel")}
        labels = runs / f"{variant}-labels"
        arms.labels_channel(taught, labels / "training", "training", "random")
        arms.labels_channel(extra, labels / "recount", "recount", "recount-head")
        channels["labels"] = labels
        r = arm(a, runs, channels, f"recounts-{variant}", seed) | {"variant": variant, "B": len(taught)}
        r["recount_counts"] = {str(c): sum(s.count == c for s in extra) for c in range(1, 6)}
        out.append(r)
        print(f"seed {seed} recounts {variant} (+{len(extra)}): accuracy {r['accuracy']:.1%}", flush=True)
    return out


def cleaning(a, seed: int, work: Path, fixed: dict, base: list, candidates: list) -> dict:
    runs = work / f"clean-seed{seed}"
    truth = {s.id: s.count for s in base + candidates}
    noisy = arms.corrupt(truth, a.noise, seed)
    wrong = {i for i in noisy if noisy[i] != truth[i]}
    first = train_once(runs, {**fixed, "training": arms.records_channel(base, noisy, runs / "base-channel")},
                       "noisy-base", {}, seed, a.budget)
    pool, _ = arms.scored_pool(runs / f"{a.budget}-noisy-base-seed{seed}" / "model", candidates, noisy)
    lean(runs / f"{a.budget}-noisy-base-seed{seed}")
    audited_wrong = wrong & set(pool.ids)
    orders = {o: pick(o, pool, len(pool), seed) for o in ("recount-head", "random")}
    budgets = sorted(set(a.budgets) | {a.clean_budget})
    out = {"seed": seed, "noise": a.noise, "wrong": len(wrong), "audited": len(pool), "audited_wrong": len(audited_wrong),
           "recount_list": int(np.isfinite(pool.recount_rank).sum()), "base_accuracy": first["accuracy"],
           "found": {o: arms.found_wrong(order, audited_wrong, budgets) for o, order in orders.items()}, "models": {}}
    everything = base + candidates
    for name, fixed_ids in {"noisy": set(), **{o: set(order[:a.clean_budget]) for o, order in orders.items()}}.items():
        records = {i: truth[i] if i in fixed_ids else noisy[i] for i in truth}
        r = arm(a, runs, {**fixed, "training": arms.records_channel(everything, records, runs / f"{name}-channel")},
                f"clean-{name}", seed)
        out["models"][name] = {k: r[k] for k in ("accuracy", "rmse", "auto_share", "seconds")} | {
            "fixed": len(fixed_ids & wrong)}
    print(f"seed {seed} cleaning: {json.dumps(out['found'])}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--base", type=int, default=800, help="bins the base model trains on")
    p.add_argument("--budgets", type=int, nargs="+", default=QUICK["budgets"], help="B: bins people count")
    p.add_argument("--seeds", type=int, nargs="+", default=QUICK["seeds"])
    p.add_argument("--strategies", nargs="+", default=QUICK["strategies"], choices=list(STRATEGIES))
    p.add_argument("--arms", nargs="+", default=["grid", "calibration"],
                   choices=["grid", "recounts", "cleaning", "calibration"])
    p.add_argument("--recounts", type=int, default=300, help="recounts: recount answers beside the first budget's")
    p.add_argument("--noise", type=float, default=0.10, help="cleaning: the share of records corrupted")
    p.add_argument("--clean-budget", type=int, default=300, help="cleaning: recounts before the retrain")
    p.add_argument("--clean-seeds", type=int, nargs="+", help="cleaning's seeds (default: --seeds)")
    p.add_argument("--calibration", type=int, nargs="+", default=[300, 600, 1000], help="recounted bins")
    p.add_argument("--budget", default="6x112", help="epochs x image size of every run")
    p.add_argument("--split-seed", type=int, default=2024)
    p.add_argument("--work", type=Path, help="keep the runs here (default: a temporary folder)")
    results_args.add(p)
    a = p.parse_args(argv)
    if (code := results_args.early_exit(a, report)) is not None:
        return code
    test, validation, pool = arms.split(scan_dataset(a.data, CountRange(1, 5))[0], a.split_seed)
    base, candidates = pool[:a.base], pool[a.base:]
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-review-"))
    fixed = {"test": link_channel(test, work / "channels" / "test"),
             "validation": link_channel(validation, work / "channels" / "validation")}
    print(f"test {len(test)}, validation {len(validation)}, base {len(base)}, candidates {len(candidates)}; "
          f"B {a.budgets}; {a.budget}; seeds {a.seeds}; arms {a.arms}; work {work}", flush=True)
    results: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
                     "grid": [], "recounts": [], "cleaning": [], "calibration": []}

    def save() -> None:
        if a.json:
            a.json.write_text(json.dumps(results, indent=1, default=str))

    pools = {}  # the order keeps a partial run useful: bases, then one budget at a time across seeds
    for seed in a.seeds if {"grid", "recounts", "calibration"} & set(a.arms) else []:  # cleaning has its own
        model, pools[seed] = base_model(a, seed, work, fixed, base, candidates, results["grid"])
        if "calibration" in a.arms:
            results["calibration"] += arms.calibration_from_recounts(model, candidates, test, a.calibration, seed)
        save()
    for n, b in enumerate(a.budgets):
        for seed in a.seeds if "grid" in a.arms else []:
            grid(a, b, seed, work, fixed, base, candidates, pools[seed], results["grid"], save)
        if n == 0 and "recounts" in a.arms:
            for seed in a.seeds:
                results["recounts"] += recounts(a, seed, work, fixed, base, candidates, pools[seed], results["grid"])
                save()
        for seed in (a.clean_seeds or a.seeds) if "cleaning" in a.arms and n == 0 else []:  # the other question
            results["cleaning"].append(cleaning(a, seed, work, fixed, base, candidates))
            save()
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
