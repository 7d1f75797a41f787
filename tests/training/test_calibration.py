"""Temperature scaling on hand-made outputs, for both heads."""

from __future__ import annotations

import numpy as np
import torch

from bincounter.metrics import expected_calibration_error
from bincounter.training.calibration import fit_temperature, nll, probabilities
from bincounter.training.recipe import ordinal_probabilities, softmax_probabilities


def _calibrated_logits(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution: labels are drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 5))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    return logits.astype(np.float32), labels


def test_calibration_lowers_the_nll_of_a_deliberately_over_confident_model():
    logits, labels = _calibrated_logits()
    over = logits * 4  # four times too sure of itself
    t = fit_temperature(over, labels, softmax_probabilities)
    z, y = torch.as_tensor(over), torch.as_tensor(labels)
    assert 3.5 < t < 4.5
    assert nll(z, y, softmax_probabilities, t) < nll(z, y, softmax_probabilities, 1.0) - 0.5
    before = expected_calibration_error(probabilities(over, softmax_probabilities), labels)
    after = expected_calibration_error(probabilities(over, softmax_probabilities, t), labels)
    assert after < before / 3
    # the arg-max, hence the counted items, does not move
    assert (probabilities(over, softmax_probabilities, t).argmax(1) == over.argmax(1)).all()


def test_an_already_calibrated_model_keeps_a_temperature_near_one():
    logits, labels = _calibrated_logits(seed=1)
    assert 0.9 < fit_temperature(logits, labels, softmax_probabilities) < 1.1


def test_the_ordinal_heads_cumulative_logits_are_calibrated_alike():
    rng = np.random.default_rng(2)
    score = rng.normal(0, 2, 4000)
    cuts = np.array([-1.5, -0.5, 0.5, 1.5])
    cum = cuts[None, :] - score[:, None]
    p = ordinal_probabilities(torch.as_tensor(cum)).numpy()
    labels = np.array([rng.choice(5, p=row / row.sum()) for row in p])
    over = (cum * 3).astype(np.float32)
    t = fit_temperature(over, labels, ordinal_probabilities)
    z, y = torch.as_tensor(over), torch.as_tensor(labels)
    assert 2.5 < t < 3.5
    assert nll(z, y, ordinal_probabilities, t) < nll(z, y, ordinal_probabilities, 1.0)
