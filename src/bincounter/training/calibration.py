"""Temperature scaling: one number that makes the served probabilities honest.

A network trained with cross-entropy (and more so with label smoothing) is
over- or under-confident. Dividing its raw outputs by one temperature T,
fitted on the validation split by minimum negative log-likelihood, fixes most
of that without changing any prediction's arg-max (Guo et al., 2017). It works
for either head: softmax logits and the ordinal head's cumulative logits are
divided alike. T is baked into the exported graph (``export.WithProbabilities``),
so every server serves calibrated probabilities, and it is recorded in model.json.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

# outside this range a fit says more about the validation split than about the model
T_MIN, T_MAX = 0.05, 20.0


def nll(outputs: torch.Tensor, targets: torch.Tensor,
        to_probabilities: Callable[[torch.Tensor], torch.Tensor], temperature: float) -> float:
    """Mean negative log-likelihood of ``targets`` under ``to_probabilities(outputs / T)``."""
    p = to_probabilities(outputs.double() / temperature)
    return float(-torch.log(p[torch.arange(len(targets)), targets].clamp_min(1e-12)).mean())


@torch.no_grad()
def fit_temperature(outputs: np.ndarray, targets: np.ndarray,
                    to_probabilities: Callable[[torch.Tensor], torch.Tensor], iterations: int = 60) -> float:
    """The T in [T_MIN, T_MAX] of least validation NLL: a golden-section search on log T
    (the NLL of a temperature-scaled softmax is unimodal in it)."""
    z, y = torch.as_tensor(outputs), torch.as_tensor(targets, dtype=torch.long)
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(z, y, to_probabilities, math.exp(a)), nll(z, y, to_probabilities, math.exp(b))
    for _ in range(iterations):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(z, y, to_probabilities, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(z, y, to_probabilities, math.exp(b))
    return round(math.exp((lo + hi) / 2), 4)


@torch.no_grad()
def probabilities(outputs: np.ndarray, to_probabilities: Callable[[torch.Tensor], torch.Tensor],
                  temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of raw ``outputs`` at ``temperature``, as the exported graph computes them."""
    return to_probabilities(torch.as_tensor(outputs).float() / temperature).double().numpy()
