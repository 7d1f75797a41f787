"""After training: calibrate the probabilities, choose the verdict thresholds for the
user's error-rate targets on the calibration split (the ``calibration`` channel when
given, else validation), and measure them on the test split.

The definitions (asks, rates) are ``bincounter.verification``'s and the threshold
choice ``bincounter.guarantees``'; this module feeds them the trained model's outputs
and shapes what model.json and the report say about them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bincounter.labels import CountRange
from bincounter.metrics import expected_calibration_error, reliability
from bincounter.training.calibration import fit_temperature, nll, probabilities
from bincounter.training.recipe import Head
from bincounter.guarantees import RESOLUTION, choose, method, miss_lines, promise
from bincounter.verification import VerdictRule, make_asks, measure

log = logging.getLogger(__name__)
ECE_BINS = 15


@dataclass(frozen=True)
class OperatingPoint:
    temperature: float
    thresholds: VerdictRule
    calibration: dict          # model.json "calibration"
    verification: dict         # model.json "verification", beside the thresholds
    test_probabilities: np.ndarray
    reliability: dict          # {"before": bins, "after": bins} on the test split
    curve: list[dict]          # test: auto share and false-match rate as match_at moves


@dataclass(frozen=True)
class Targets:
    """What the verdicts must keep: the hyperparameters of the same names, which own the defaults."""
    max_false_match: float
    max_false_mismatch: float
    guarantee: str
    confidence: float


def operating_point(head: Head, fit_on: dict, test: dict, count_range: CountRange, targets: Targets,
                    fit_split: str = "validation") -> OperatingPoint:
    """``fit_on`` / ``test``: ``Trainer.evaluate`` results (raw outputs, class targets); the
    temperature and thresholds are fitted on ``fit_on``, the ``fit_split`` ("validation", or
    "calibration" for the calibration channel)."""
    import torch

    counts = count_range.counts
    temperature = fit_temperature(fit_on["outputs"], fit_on["targets"], head.probabilities)
    val_p = probabilities(fit_on["outputs"], head.probabilities, temperature)
    test_raw = probabilities(test["outputs"], head.probabilities)
    test_p = probabilities(test["outputs"], head.probabilities, temperature)
    z, y = torch.as_tensor(fit_on["outputs"]), torch.as_tensor(fit_on["targets"], dtype=torch.long)
    calibration = {
        "temperature": temperature, "split": fit_split, "n": int(len(y)),
        "method": f"temperature scaling: outputs / T, T of least NLL on the {fit_split} split",
        "validation_nll_before": round(nll(z, y, head.probabilities, 1.0), 4),
        "validation_nll_after": round(nll(z, y, head.probabilities, temperature), 4),
        "test_ece_before": round(expected_calibration_error(test_raw, test["targets"], ECE_BINS), 4),
        "test_ece_after": round(expected_calibration_error(test_p, test["targets"], ECE_BINS), 4),
        "ece_bins": ECE_BINS}
    log.info("calibration: T = %.3f; validation NLL %.4f -> %.4f; test ECE %.4f -> %.4f", temperature,
             calibration["validation_nll_before"], calibration["validation_nll_after"],
             calibration["test_ece_before"], calibration["test_ece_after"])

    labels_val = np.asarray(counts)[fit_on["targets"]]
    labels_test = np.asarray(counts)[test["targets"]]
    val_asks, test_asks = make_asks(val_p, labels_val, counts), make_asks(test_p, labels_test, counts)
    choice = choose(val_asks, counts, targets.max_false_match, targets.max_false_mismatch,
                    targets.guarantee, targets.confidence)
    for note in choice.notes:
        log.warning("verdicts: %s", note)
    measured = {fit_split: measure(val_asks, choice.rule), "test": measure(test_asks, choice.rule)}
    t = measured["test"]
    goals = {"max_false_match": targets.max_false_match, "max_false_mismatch": targets.max_false_mismatch}
    log.info("verdicts (%s): %s; test: false match %s of %d, false mismatch %s of %d, auto share %s",
             targets.guarantee, choice.rule.describe(), _pct(t["false_match_rate"]), t["false_match_n"],
             _pct(t["false_mismatch_rate"]), t["false_mismatch_n"], _pct(t["auto_share"]))
    for line in miss_lines(t, goals):
        log.warning("verdicts on the test split: %s", line)
    verification = {"targets": goals, "guarantee": targets.guarantee,
                    "promise": promise(targets.guarantee, targets.confidence), "confidence": targets.confidence,
                    "method": method(targets.guarantee, targets.confidence), "fitted_on": fit_split,
                    "notes": list(choice.notes),
                    "unmet": [{"count": c, "verdict": v, "asks": n, "needs": need} for c, v, n, need in choice.unmet],
                    "measured": measured}
    return OperatingPoint(temperature, choice.rule, calibration, verification, test_p,
                          {"before": reliability(test_raw, test["targets"], ECE_BINS),
                           "after": reliability(test_p, test["targets"], ECE_BINS)},
                          coverage_curve(test_asks, choice.rule))


def coverage_curve(asks, chosen: VerdictRule, points: int = 101) -> list[dict]:
    """Auto share and false-match rate as one ``match_at`` for every count moves from above
    the highest chosen ``mismatch_at`` to 1, each count's ``mismatch_at`` as chosen."""
    pairs = [t for _, t in chosen.per_count] or [chosen.pooled]
    low = max((t.mismatch_at or 0.0) for t in pairs)
    curve = []
    for m in np.linspace(low + RESOLUTION, 1, points):
        rates = measure(asks, chosen.replace_sides(match_at=float(m)))
        curve.append({"match_at": float(m), "auto_share": rates["auto_share"],
                      "false_match_rate": rates["false_match_rate"]})
    return curve


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"
