"""After training: calibrate the probabilities, choose the verdict thresholds for the
user's error-rate targets on the validation split, and measure them on the test split.

The definitions (asks, rates, the threshold choice) are ``bincounter.verification``'s;
this module feeds them the trained model's outputs and shapes what model.json and
the report say about them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bincounter.labels import CountRange
from bincounter.metrics import expected_calibration_error, reliability
from bincounter.training.calibration import fit_temperature, nll, probabilities
from bincounter.training.recipe import Head
from bincounter.verification import (CONFIDENCE, METHOD, RESOLUTION, Thresholds, choose_thresholds,
                                     make_asks, measure)

log = logging.getLogger(__name__)
ECE_BINS = 15


@dataclass(frozen=True)
class OperatingPoint:
    temperature: float
    thresholds: Thresholds
    calibration: dict          # model.json "calibration"
    verification: dict         # model.json "verification", beside the thresholds
    test_probabilities: np.ndarray
    reliability: dict          # {"before": bins, "after": bins} on the test split
    curve: list[dict]          # test: auto share and false-match rate as match_at moves


def operating_point(head: Head, validation: dict, test: dict, count_range: CountRange,
                    max_false_match: float, max_false_mismatch: float) -> OperatingPoint:
    """``validation`` / ``test``: ``Trainer.evaluate`` results (raw outputs, class targets)."""
    import torch

    counts = count_range.counts
    temperature = fit_temperature(validation["outputs"], validation["targets"], head.probabilities)
    val_p = probabilities(validation["outputs"], head.probabilities, temperature)
    test_raw = probabilities(test["outputs"], head.probabilities)
    test_p = probabilities(test["outputs"], head.probabilities, temperature)
    z, y = torch.as_tensor(validation["outputs"]), torch.as_tensor(validation["targets"], dtype=torch.long)
    calibration = {
        "temperature": temperature,
        "method": "temperature scaling: outputs / T, T of least NLL on the validation split",
        "validation_nll_before": round(nll(z, y, head.probabilities, 1.0), 4),
        "validation_nll_after": round(nll(z, y, head.probabilities, temperature), 4),
        "test_ece_before": round(expected_calibration_error(test_raw, test["targets"], ECE_BINS), 4),
        "test_ece_after": round(expected_calibration_error(test_p, test["targets"], ECE_BINS), 4),
        "ece_bins": ECE_BINS}
    log.info("calibration: T = %.3f; validation NLL %.4f -> %.4f; test ECE %.4f -> %.4f", temperature,
             calibration["validation_nll_before"], calibration["validation_nll_after"],
             calibration["test_ece_before"], calibration["test_ece_after"])

    labels_val = np.asarray(counts)[validation["targets"]]
    labels_test = np.asarray(counts)[test["targets"]]
    val_asks, test_asks = make_asks(val_p, labels_val, counts), make_asks(test_p, labels_test, counts)
    choice = choose_thresholds(val_asks, max_false_match, max_false_mismatch)
    for note in choice.notes:
        log.warning("verdicts: %s", note)
    measured = {"validation": measure(val_asks, choice.thresholds), "test": measure(test_asks, choice.thresholds)}
    t = measured["test"]
    log.info("verdicts: match at p >= %s, mismatch at p <= %s; test: false match %s of %d, false "
             "mismatch %s of %d, auto share %s", choice.thresholds.match_at, choice.thresholds.mismatch_at,
             _pct(t["false_match_rate"]), t["false_match_n"], _pct(t["false_mismatch_rate"]),
             t["false_mismatch_n"], _pct(t["auto_share"]))
    verification = {"targets": {"max_false_match": max_false_match, "max_false_mismatch": max_false_mismatch},
                    "confidence": CONFIDENCE, "method": METHOD, "notes": list(choice.notes),
                    "measured": measured}
    return OperatingPoint(temperature, choice.thresholds, calibration, verification, test_p,
                          {"before": reliability(test_raw, test["targets"], ECE_BINS),
                           "after": reliability(test_p, test["targets"], ECE_BINS)},
                          coverage_curve(test_asks, choice.thresholds))


def coverage_curve(asks, chosen: Thresholds, points: int = 101) -> list[dict]:
    """Auto share and false-match rate as ``match_at`` moves from above the chosen
    ``mismatch_at`` to 1, ``mismatch_at`` as chosen."""
    curve = []
    for m in np.linspace((chosen.mismatch_at or 0.0) + RESOLUTION, 1, points):
        rates = measure(asks, Thresholds(float(m), chosen.mismatch_at))
        curve.append({"match_at": float(m), "auto_share": rates["auto_share"],
                      "false_match_rate": rates["false_match_rate"]})
    return curve


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"
