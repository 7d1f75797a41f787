"""Verdict thresholds: one pair for every expected count, or a pair per count? Measured.

    python -m benchmarks.bench_verdicts /tmp/bench_train/12x112-ours-seed0 [...]

For each trained run of ``make bench-train`` (its folder holds ``model/`` and the
benchmark's ``channels/`` beside it), the model answers its validation and test
photos as the server would (ONNX Runtime through the serving handler, calibrated
probabilities), then thresholds are chosen on validation at the default targets
(``bincounter.verification``) once for all asks, and once per expected count, and
both are measured on the test split beside the constant thresholds every model used
before (match at p >= 0.5, mismatch at p <= 0.1). Prints auto share and error rates
side by side; "unmet sides" counts the thresholds that never fire because the
validation split could not vouch for their target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from bincounter.serving.handler import Instance, ModelHandler
from bincounter.training.hyperparameters import PARAMS
from bincounter.verification import Asks, Thresholds, choose_thresholds, make_asks, measure

# training's default targets (the hyperparameters' one owner)
TARGETS = (PARAMS["max-false-match"].default, PARAMS["max-false-mismatch"].default)


def answers(handler: ModelHandler, channel: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, calibrated probabilities) of every photo in ``channel``, as served."""
    samples, _ = scan_dataset(channel, CountRange(1, 5))
    instances = [Instance(s.image_path.read_bytes()) for s in samples]
    probs = np.concatenate([handler.predict(handler.preprocess(instances[i:i + 64]))
                            for i in range(0, len(instances), 64)])
    return np.array([s.count for s in samples]), probs


def per_count(val: Asks, test: Asks) -> dict:
    """Thresholds chosen per expected count on ``val``, each measured on that count's ``test`` asks,
    then pooled: verdicts of the test asks under their own count's thresholds."""
    verdicts = np.full(test.p.shape, "review", dtype=object)
    unmet = 0
    for count in np.unique(val.expected):
        choice = choose_thresholds(val.where(val.expected == count), *TARGETS)
        unmet += len(choice.notes)
        mine = test.expected == count
        verdicts[mine] = choice.thresholds.verdicts(test.p[mine])
    correct, wrong = test.off == 0, test.off == 1
    return {"auto_share": ((verdicts[correct] != "review").mean() + (verdicts[wrong] != "review").mean()) / 2,
            "false_match_rate": float((verdicts[wrong] == "match").mean()),
            "false_mismatch_rate": float((verdicts[correct] == "mismatch").mean()), "unmet_sides": unmet}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="bench-train run folders (model/ inside)")
    a = p.parse_args(argv)
    print(f"targets: false match <= {TARGETS[0]:.0%}, false mismatch <= {TARGETS[1]:.0%} (95 % bound on validation)")
    print(f"{'run':32} {'thresholds':10} {'auto %':>7} {'false match %':>14} {'false mismatch %':>17}  unmet sides")
    for run in a.runs:
        channels = run.parent / "channels"
        handler = ModelHandler.load(run / "model", thresholds=Thresholds(0.5, 0.1))
        val_labels, val_p = answers(handler, channels / "validation")
        test_labels, test_p = answers(handler, channels / "test")
        counts = handler.classes
        val, test = make_asks(val_p, val_labels, counts), make_asks(test_p, test_labels, counts)
        one = choose_thresholds(val, *TARGETS)
        pooled = measure(test, one.thresholds)
        split = per_count(val, test)
        before = measure(test, Thresholds(0.5, 0.1))  # the constants every model used before targets
        for name, r, unmet in (("0.5 / 0.1", before, 0), ("one pair", pooled, len(one.notes)),
                               ("per count", split, split["unmet_sides"])):
            print(f"{run.name:32} {name:10} {r['auto_share'] * 100:7.2f} {r['false_match_rate'] * 100:14.2f} "
                  f"{r['false_mismatch_rate'] * 100:17.2f}  {unmet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
