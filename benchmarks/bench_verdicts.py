"""Verdict guarantees side by side on the real sample: per-count and pooled rates, auto share.

    python -m benchmarks.bench_verdicts RUN [RUN ...] [--draws 40 --calibration-sizes 332 660]

Each RUN is a ``make bench-train`` run folder (``model/`` inside, the benchmark's
``channels/`` beside it). Its model answers the validation and test photos as the
server would (ONNX Runtime through the serving handler, calibrated probabilities).

1. **Fixed split** (what training does): thresholds are chosen on the validation
   split under each guarantee (``bincounter.guarantees``) at the default targets,
   and measured on the test split: every expected count's false-match and
   false-mismatch rate with n, pooled rates, auto share, and the sides that cannot
   fire. The constant thresholds every model used before targets (0.5 / 0.1) are
   the baseline row.
2. **Calibration draws** (what a guarantee promises): the validation and test
   photos are pooled; ``--draws`` times, a calibration set of each
   ``--calibration-sizes`` is drawn at random, thresholds are chosen on it and
   scored on the rest. Prints each count's mean and worst rate over the draws and
   the pooled auto share (mean, worst): "in expectation" is about the mean, "with
   95 % confidence" about the draws above target (at most 5 % of them).

Results (JSON) go to ``--out``; the tables to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bincounter.guarantees import CONFIDENCE, GUARANTEES, choose
from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from bincounter.serving.handler import Instance, ModelHandler
from bincounter.training.hyperparameters import PARAMS
from bincounter.verification import Thresholds, VerdictRule, make_asks, measure

# training's default targets (the hyperparameters' one owner)
TARGETS = (PARAMS["max-false-match"].default, PARAMS["max-false-mismatch"].default)
CONSTANT = VerdictRule(Thresholds(0.5, 0.1))  # the constants every model used before targets


def answers(handler: ModelHandler, channel: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, calibrated probabilities) of every photo in ``channel``, as served."""
    samples, _ = scan_dataset(channel, CountRange(1, 5))
    instances = [Instance(s.image_path.read_bytes()) for s in samples]
    probs = np.concatenate([handler.predict(handler.preprocess(instances[i:i + 64]))
                            for i in range(0, len(instances), 64)])
    return np.array([s.count for s in samples]), probs


def row(point: dict) -> dict:
    """The scores of one measured point: pooled and per expected count."""
    per = {c: {"false_match": r["false_match_rate"], "false_match_n": r["false_match_n"],
               "false_mismatch": r["false_mismatch_rate"], "false_mismatch_n": r["false_mismatch_n"],
               "auto_share": r["auto_share"]} for c, r in point["per_expected"].items()}
    return {"auto_share": point["auto_share"], "false_match": point["false_match_rate"],
            "false_mismatch": point["false_mismatch_rate"], "per_count": per}


def guarantee(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME@CONFIDENCE`` (upper-bound@0.8: the training-conditional rule at 80 %)."""
    name, _, conf = text.partition("@")
    if name not in GUARANTEES:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(GUARANTEES)}, optionally @CONFIDENCE")
    try:
        confidence = float(conf) if conf else CONFIDENCE
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the confidence must be a number") from None
    if not 0.5 <= confidence < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the confidence must be within [0.5, 1)")
    return name, confidence


def pick(asks, counts: list[int], spec: str) -> tuple[VerdictRule, int]:
    """The rule ``spec`` (``guarantee``'s text) chooses on ``asks``, and its sides that never fire."""
    name, confidence = guarantee(spec)
    choice = choose(asks, counts, *TARGETS, guarantee=name, confidence=confidence)
    return choice.rule, len(choice.unmet)


def fixed_split(probs: dict, counts: list[int], guarantees: list[str]) -> dict:
    val = make_asks(probs["validation"][1], probs["validation"][0], counts)
    test = make_asks(probs["test"][1], probs["test"][0], counts)
    out = {"constant 0.5 / 0.1": {**row(measure(test, CONSTANT)), "unmet": 0}}
    for g in guarantees:
        rule, unmet = pick(val, counts, g)
        out[g] = {**row(measure(test, rule)), "unmet": unmet}
    return out


def draws(labels: np.ndarray, p: np.ndarray, counts: list[int], size: int, n: int, seed: int,
          guarantees: list[str]) -> dict:
    """``n`` random calibration sets of ``size`` photos; thresholds scored on the rest."""
    rng = np.random.default_rng(seed)
    runs: dict[str, list[dict]] = {g: [] for g in guarantees}
    for _ in range(n):
        order = rng.permutation(len(labels))
        cal, rest = order[:size], order[size:]
        cal_asks, rest_asks = make_asks(p[cal], labels[cal], counts), make_asks(p[rest], labels[rest], counts)
        for g in guarantees:
            runs[g].append(row(measure(rest_asks, pick(cal_asks, counts, g)[0])))
    summary = {}
    for g, rs in runs.items():
        per = {}
        for c in map(str, counts):
            fm = np.array([r["per_count"][c]["false_match"] or 0.0 for r in rs])
            fmm = np.array([r["per_count"][c]["false_mismatch"] or 0.0 for r in rs])
            per[c] = {"false_match_mean": fm.mean(), "false_match_worst": fm.max(),
                      "false_match_over": float((fm > TARGETS[0]).mean()),
                      "false_mismatch_mean": fmm.mean(), "false_mismatch_worst": fmm.max(),
                      "false_mismatch_over": float((fmm > TARGETS[1]).mean()),
                      "auto_share_mean": float(np.mean([r["per_count"][c]["auto_share"] for r in rs]))}
        auto = np.array([r["auto_share"] for r in rs])
        summary[g] = {"auto_share_mean": auto.mean(), "auto_share_worst": auto.min(), "per_count": per}
    return summary


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}"


def fixed_table(name: str, result: dict, counts: list[int]) -> list[str]:
    lines = [f"### {name}: thresholds chosen on validation, measured on test", "",
             "| thresholds | auto % | false match % | false mismatch % | " + " | ".join(
                 f"count {c}: FM / FMM / auto %" for c in counts) + " | sides that never fire |",
             "|---|---|---|---|" + "---|" * len(counts) + "---|"]
    for g, r in result.items():
        cells = [f"{pct(r['per_count'][str(c)]['false_match'])} / {pct(r['per_count'][str(c)]['false_mismatch'])} / "
                 f"{pct(r['per_count'][str(c)]['auto_share'])}" for c in counts]
        lines.append(f"| {g} | {pct(r['auto_share'])} | {pct(r['false_match'])} | {pct(r['false_mismatch'])} | "
                     + " | ".join(cells) + f" | {r['unmet']} |")
    n = next(iter(result.values()))["per_count"]
    lines += ["", "test asks per count (wrong / correct): " + ", ".join(
        f"{c}: {n[str(c)]['false_match_n']} / {n[str(c)]['false_mismatch_n']}" for c in counts), ""]
    return lines


def draws_table(name: str, size: int, n: int, result: dict, counts: list[int]) -> list[str]:
    lines = [f"### {name}: {n} random calibration sets of {size} photos, scored on the rest", "",
             "| guarantee | auto % mean (worst) | " + " | ".join(
                 f"count {c}: FM % mean (worst) / FMM % mean (worst)" for c in counts)
             + " | draws with a count above target |", "|---|---|" + "---|" * len(counts) + "---|"]
    for g, r in result.items():
        cells = [f"{pct(r['per_count'][str(c)]['false_match_mean'])} ({pct(r['per_count'][str(c)]['false_match_worst'])})"
                 f" / {pct(r['per_count'][str(c)]['false_mismatch_mean'])} "
                 f"({pct(r['per_count'][str(c)]['false_mismatch_worst'])})" for c in counts]
        over = max(max(v["false_match_over"], v["false_mismatch_over"]) for v in r["per_count"].values())
        lines.append(f"| {g} | {pct(r['auto_share_mean'])} ({pct(r['auto_share_worst'])}) | " + " | ".join(cells)
                     + f" | up to {over * 100:.0f} % (one count, one side) |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="bench-train run folders (model/ inside)")
    p.add_argument("--guarantees", nargs="+", default=list(GUARANTEES), metavar="NAME[@CONFIDENCE]",
                   help=f"any of {', '.join(GUARANTEES)}; @0.8 sets upper-bound's or pooled's confidence")
    p.add_argument("--draws", type=int, default=40, help="calibration draws per size (0: fixed split only)")
    p.add_argument("--calibration-sizes", type=int, nargs="+", default=[332, 660])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write every number as JSON here")
    a = p.parse_args(argv)
    for g in a.guarantees:  # refused before any model is loaded
        try:
            guarantee(g)
        except argparse.ArgumentTypeError as e:
            p.error(str(e))
    print(f"targets: false match <= {TARGETS[0]:.0%}, false mismatch <= {TARGETS[1]:.0%} per expected count")
    results = {}
    for run in a.runs:
        channels = run.parent / "channels"
        handler = ModelHandler.load(run / "model", thresholds=CONSTANT)
        counts = handler.classes
        probs = {split: answers(handler, channels / split) for split in ("validation", "test")}
        name = str(run)  # bench-train names runs alike in every work folder: the path tells them apart
        results[name] = {"fixed": fixed_split(probs, counts, a.guarantees), "draws": {}}
        print("\n".join(fixed_table(name, results[name]["fixed"], counts)), flush=True)
        labels = np.concatenate([probs["validation"][0], probs["test"][0]])
        pooled = np.concatenate([probs["validation"][1], probs["test"][1]])
        for size in a.calibration_sizes if a.draws else []:
            if size >= len(labels):
                print(f"(calibration size {size} >= the {len(labels)} held-out photos: skipped)")
                continue
            r = draws(labels, pooled, counts, size, a.draws, a.seed, a.guarantees)
            results[name]["draws"][str(size)] = r
            print("\n".join(draws_table(name, size, a.draws, r, counts)), flush=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
