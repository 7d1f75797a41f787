"""The monitor benchmark's own logic: records one off at the stated rate, and windows judged
against a reference of the other photos."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_monitor import WRONG_RECORDS, answers, run_windows
from bincounter.serving.handler import ModelHandler


def _table(rng, n: int, sharp: float, classes: list[int]):
    labels = rng.integers(classes[0], classes[-1] + 1, n)
    logits = rng.normal(0, 1, (n, len(classes)))
    logits[np.arange(n), labels - classes[0]] += sharp
    return labels, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_records_are_one_off_at_the_stated_rate_and_stay_within_the_models_counts(random_model_dir):
    handler = ModelHandler.load(random_model_dir)
    labels, p = _table(np.random.default_rng(0), 2000, 2.0, handler.classes)
    asked, wrong = answers(labels, p, handler, np.random.default_rng(1), WRONG_RECORDS)
    expected = np.array([a["verification"]["expected_quantity"] for a in asked])
    assert abs(wrong.mean() - WRONG_RECORDS) < 0.03
    assert (np.abs(expected - labels)[wrong == 1] == 1).all() and (expected[wrong == 0] == labels[wrong == 0]).all()
    assert expected.min() >= handler.classes[0] and expected.max() <= handler.classes[-1]


# Quiet windows: the monitor promises at most ALPHA (5 %) false alarms per window. Over 200
# windows at most 18 may alarm: a monitor that keeps its 5 % passes with probability 0.994
# (P[Bin(200, 0.05) > 18] = 0.006), one that alarms on 15 % of quiet windows fails with
# probability 0.992 (P[Bin(200, 0.15) <= 18] = 0.008). The windows are seeded: one draw.
QUIET_WINDOWS, MOST_ALARMS = 200, 18


def test_quiet_windows_rarely_alarm_and_flattened_answers_always_do(random_model_dir):
    handler = ModelHandler.load(random_model_dir)
    labels, p = _table(np.random.default_rng(2), 300, 2.0, handler.classes)
    index = np.arange(len(labels))
    quiet = run_windows((labels, p), (labels, p, index), handler, 60, QUIET_WINDOWS, seed=3)
    # (this table is not calibrated, so its accuracy estimate is not checked here; bench-monitor measures it)
    assert round(quiet["alarm_rate"] * QUIET_WINDOWS) <= MOST_ALARMS
    assert quiet["accuracy_estimate"]["windows"] == QUIET_WINDOWS
    flat = (p + 1) / (p + 1).sum(axis=1, keepdims=True)  # an unsure model: another camera
    shifted = run_windows((labels, p), (labels, flat, index), handler, 60, 10, seed=4)
    assert shifted["alarm_rate"] == 1.0 and "probability of the counted class" in shifted["fired_by"]
