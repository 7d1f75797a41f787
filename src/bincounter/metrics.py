"""Evaluation metrics in the ABID challenge's form (accuracy, RMSE, per class).

RMSE is measured in items (predicted count - true count), so it is comparable
with the challenge's 0.930 baseline. numpy only: usable by serving and tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    counts: list[int]             # the class labels, e.g. [1, 2, 3, 4, 5]
    accuracy: float
    rmse: float
    n: int
    per_class: dict[int, dict]    # count -> {"n", "accuracy", "rmse"}
    confusion: list[list[int]]    # rows = true count, columns = predicted count

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "rmse": self.rmse, "n": self.n,
                "counts": self.counts,
                "per_class": {str(k): v for k, v in self.per_class.items()},
                "confusion": self.confusion}

    def table(self) -> str:
        """The per-class table as the ABID challenge prints it."""
        lines = ["| count | n | accuracy (%) | RMSE |", "|---|---|---|---|"]
        for c in self.counts:
            pc = self.per_class[c]
            lines.append(f"| {c} | {pc['n']} | {pc['accuracy'] * 100:.2f} | {pc['rmse']:.3f} |")
        lines.append(f"| all | {self.n} | {self.accuracy * 100:.2f} | {self.rmse:.3f} |")
        return "\n".join(lines)


def evaluate_counts(true_counts, pred_counts, counts: list[int]) -> Evaluation:
    t = np.asarray(true_counts, dtype=np.int64)
    p = np.asarray(pred_counts, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError("true and predicted counts must be 1-D and of equal length")
    if t.size == 0:
        raise ValueError("cannot evaluate an empty set")
    err = (p - t).astype(np.float64)
    per_class = {}
    for c in counts:
        m = t == c
        k = int(m.sum())
        per_class[c] = {"n": k,
                        "accuracy": float((p[m] == c).mean()) if k else 0.0,
                        "rmse": float(np.sqrt((err[m] ** 2).mean())) if k else 0.0}
    index = {c: i for i, c in enumerate(counts)}
    confusion = np.zeros((len(counts), len(counts)), dtype=np.int64)
    for tc, pc in zip(t, p):
        if tc in index and pc in index:
            confusion[index[tc], index[pc]] += 1
    return Evaluation(counts=list(counts), accuracy=float((t == p).mean()),
                      rmse=float(np.sqrt((err ** 2).mean())), n=int(t.size),
                      per_class=per_class, confusion=confusion.tolist())



def reliability(probabilities: np.ndarray, labels_index: np.ndarray, bins: int = 15) -> list[dict]:
    """Top-1 confidence in ``bins`` equal-width bins: each bin's mean confidence, accuracy and n."""
    p = np.asarray(probabilities, np.float64)
    confidence, correct = p.max(1), p.argmax(1) == np.asarray(labels_index)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return [{"confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean()),
             "n": int((which == b).sum())} for b in range(bins) if (which == b).any()]


def expected_calibration_error(probabilities: np.ndarray, labels_index: np.ndarray, bins: int = 15) -> float:
    """ECE: the n-weighted mean gap between confidence and accuracy over ``bins`` bins."""
    table = reliability(probabilities, labels_index, bins)
    n = sum(b["n"] for b in table)
    return float(sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in table) / n)
