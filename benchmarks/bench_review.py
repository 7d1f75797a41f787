"""Is labelling the recount list worth it? Active vs random labels at one budget, on the real sample.

    python -m benchmarks.bench_review [--base 800 --labels 300 --seeds 0 1 --budget 6x112]   # make bench-review

The sample's photos in counts 1-5 are split once (``--split-seed``): an untouched test split
(600), a validation split (300), and a pool. Per training seed:

1. **base**: a model trained through the real toolkit on the first ``--base`` bins of the pool;
2. it **audits** the rest of the pool in process (``bincounter.serving``'s handler, the
   card's verdicts, the audit report's own recount order: mismatches most certain first,
   then reviews by the probability of the recorded count);
3. ``--labels`` B bins are "recounted": **recount** takes the head of that order, **random**
   B bins drawn by the seed; their metadata counts stand in for people's and reach training
   the product's way (a ``labels`` channel of ``bincounter.reviews`` lines);
4. each arm retrains from scratch on base + its B bins; all three are scored on the test split
   (accuracy, RMSE, and the share answered without a person at the default targets).

The seed-to-seed spread is printed beside the arms' difference: a difference inside it is
no evidence either way.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench_train import link_channel, mean, train_once
from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from bincounter.reviews import HumanLabel, write_labels
from devtools.local_toolkit import SAMPLE

SETTINGS = {"split-seed": 2024}


def recount_order(model_dir: Path, pool: list) -> list[str]:
    """The pool's bins in the audit's recount order, as the base model answers them."""
    from bincounter.serving.handler import Instance, ModelHandler
    from orchestrate.audit.join import Row
    from orchestrate.audit.report import recount_order as order

    handler = ModelHandler.load(model_dir)
    probs = np.concatenate([handler.predict(handler.preprocess([Instance(s.image_path.read_bytes())
                                                                for s in pool[i:i + 64]]))
                            for i in range(0, len(pool), 64)])
    expected = np.array([s.count for s in pool])
    p_expected = probs[np.arange(len(pool)), expected - 1]
    verdicts = handler.card.verification.verdicts(p_expected, expected)
    rows = [Row(s.id, int(e), int(p.argmax()) + 1, float(pe), verdict=str(v))
            for s, e, p, pe, v in zip(pool, expected, probs, p_expected, verdicts)]
    return [r.bin_id for r in order(rows)]


def labels_channel(picked: list, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_labels(out / "labels.jsonl", [HumanLabel(str(s.image_path), str(s.count), expected_quantity=s.count,
                                                   job="bench-review") for s in picked])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--base", type=int, default=800, help="bins the base model trains on")
    p.add_argument("--labels", type=int, default=300, help="B: bins people recount (the labelling budget)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--budget", default="6x112", help="epochs x image size of every run")
    p.add_argument("--split-seed", type=int, default=SETTINGS["split-seed"])
    p.add_argument("--work", type=Path, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="write the results here")
    a = p.parse_args(argv)
    if not (a.data / "metadata").is_dir():
        print(f"no ABID sample at {a.data} (it lives in ../shared): nothing to measure")
        return 1
    samples = sorted(scan_dataset(a.data, CountRange(1, 5))[0], key=lambda s: s.id)
    random.Random(a.split_seed).shuffle(samples)
    test, validation, pool = samples[:600], samples[600:900], samples[900:]
    base, candidates = pool[:a.base], pool[a.base:]
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-review-"))
    fixed = {"test": link_channel(test, work / "channels" / "test"),
             "validation": link_channel(validation, work / "channels" / "validation")}
    print(f"{len(samples)} photos in counts 1-5: test {len(test)}, validation {len(validation)}, base {len(base)}, "
          f"audited {len(candidates)}; B = {a.labels}; budget {a.budget}; seeds {a.seeds}; work {work}")
    results = []
    by_id = {s.id: s for s in candidates}
    for seed in a.seeds:
        runs = work / f"seed{seed}"
        channels = {**fixed, "training": link_channel(base, runs / "base-channel")}
        first = train_once(runs, channels, "base", {}, seed, a.budget)
        results.append(first)
        order = recount_order(runs / f"{a.budget}-base-seed{seed}" / "model", candidates)
        picks = {"recount": [by_id[i] for i in order[:a.labels]],
                 "random": random.Random(seed).sample(candidates, a.labels)}
        for arm, picked in picks.items():
            channels = {**fixed, "training": link_channel(base + picked, runs / f"{arm}-channel"),
                        "labels": labels_channel(picked, runs / f"{arm}-labels")}
            r = train_once(runs, channels, arm, {}, seed, a.budget)
            r["picked_counts"] = {c: sum(s.count == c for s in picked) for c in range(1, 6)}
            results.append(r)
        print(json.dumps({r["recipe"]: round(r["accuracy"], 4) for r in results if r["seed"] == seed}))
    print("\n| arm | seeds | accuracy (each) | mean | RMSE mean | auto share mean |\n|---|---|---|---|---|---|")
    for arm in ("base", "recount", "random"):
        rs = [r for r in results if r["recipe"] == arm]
        each = ", ".join(f"{r['accuracy']:.1%}" for r in rs)
        print(f"| {arm} | {len(rs)} | {each} | {mean([r['accuracy'] for r in rs]):.1%} "
              f"| {mean([r['rmse'] for r in rs]):.3f} | {mean([r['auto_share'] for r in rs]):.1%} |")
    diffs = [next(r["accuracy"] for r in results if r["recipe"] == "recount" and r["seed"] == s)
             - next(r["accuracy"] for r in results if r["recipe"] == "random" and r["seed"] == s) for s in a.seeds]
    print(f"\nrecount - random, accuracy, per seed: {', '.join(f'{d:+.1%}' for d in diffs)}")
    if a.json:
        a.json.write_text(json.dumps({"settings": vars(a) | {"data": str(a.data), "work": str(work),
                                                            "json": str(a.json)}, "results": results},
                                     indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
