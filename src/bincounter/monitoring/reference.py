"""What the monitor compares live answers with: distributions of the served model's answers on
its test split, measured by training and stored beside model.json (``REFERENCE_FILE``).

For every test photo: the counted class (arg-max), the probability of the counted class, and
the entropy of the answer (normalised to 0..1 by log of the class count). The verdict mix is
that of the correct asks (each photo asked with its own count), at the card's thresholds:
what the live mix looks like when the expected quantities are right. ``measured`` holds the
test values the label-free estimates stand beside: the accuracy and its estimate (the mean
probability of the counted class), and among ``match`` answers of the operating point's asks
(one correct ask and the asks one and two off per photo) the share that was wrong and its
estimate (the mean of 1 - p). The estimates are honest because the probabilities are
calibrated (the temperature is inside the graph).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from bincounter.verification import VERDICTS, VerdictRule, make_asks

REFERENCE_FILE = "monitor_reference.json"
DIGITS = 5  # the reference's floats are rounded: a few KB for a test split of thousands


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each row, 0 (certain) .. 1 (uniform over the classes)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])


def answer_stats(probabilities: np.ndarray, classes: list[int]) -> dict[str, np.ndarray]:
    """The per-answer values the monitor compares: counted class, its probability, entropy."""
    p = np.asarray(probabilities, np.float64)
    best = p.argmax(axis=1)
    return {"counted": np.asarray(classes)[best], "p_counted": p[np.arange(len(p)), best], "entropy": entropy(p)}


def build(probabilities: np.ndarray, labels: np.ndarray, classes: list[int], rule: VerdictRule,
          split: str = "test") -> dict:
    """The reference document of one labelled split (see the module's docstring)."""
    p, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    stats = answer_stats(p, classes)
    own = p[np.arange(len(p)), labels - classes[0]]
    mix = Counter(rule.verdicts(own, labels).tolist())
    asks = make_asks(p, labels, classes)
    match = rule.verdicts(asks.p, asks.expected) == "match"
    measured = {"accuracy": float((stats["counted"] == labels).mean()),
                "accuracy_estimate": float(stats["p_counted"].mean()),
                "match_n": int(match.sum()),
                "match_wrong_share": float((asks.off[match] > 0).mean()) if match.any() else None,
                "match_wrong_estimate": float((1 - asks.p[match]).mean()) if match.any() else None}
    return {"split": split, "n": int(len(p)), "classes": list(classes),
            "counted": [int(c) for c in stats["counted"]],
            "p_counted": [round(float(x), DIGITS) for x in stats["p_counted"]],
            "entropy": [round(float(x), DIGITS) for x in stats["entropy"]],
            "verdicts": {v: int(mix.get(v, 0)) for v in VERDICTS}, "measured": measured}
