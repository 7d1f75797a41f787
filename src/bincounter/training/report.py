"""The evaluation report in the ABID challenge's form, and its figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in a training container
import matplotlib.pyplot as plt  # noqa: E402

from bincounter.metrics import Evaluation  # noqa: E402

ABID_BASELINE = {"accuracy": 0.5567, "rmse": 0.930}


def write_report(out_dir: Path, evaluation: Evaluation, history: list[dict], extra: dict,
                 sections: list[str] | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"test": evaluation.to_dict(), "history": history, "abid_baseline": ABID_BASELINE, **extra}
    (out_dir / "evaluation.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    md = [f"# Evaluation on the test split ({evaluation.n} images)", "",
          f"Accuracy {evaluation.accuracy * 100:.2f} %, RMSE {evaluation.rmse:.3f} "
          f"(ABID challenge baseline: {ABID_BASELINE['accuracy'] * 100:.2f} %, "
          f"RMSE {ABID_BASELINE['rmse']:.3f})", "", evaluation.table(), "", *(sections or [])]
    (out_dir / "evaluation.md").write_text("\n".join(md), encoding="utf-8")
    plot_confusion(evaluation, out_dir / "confusion_matrix.png")
    plot_curves(history, out_dir / "training_curves.png")
    return out_dir / "evaluation.md"


def plot_confusion(evaluation: Evaluation, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(evaluation.confusion, cmap="Blues")
    ticks = range(len(evaluation.counts))
    ax.set_xticks(ticks, evaluation.counts)
    ax.set_yticks(ticks, evaluation.counts)
    ax.set_xlabel("predicted count")
    ax.set_ylabel("true count")
    for i, row in enumerate(evaluation.confusion):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_title(f"test accuracy {evaluation.accuracy * 100:.1f} %")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.5))
    epochs = [h["epoch"] for h in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax1.plot(epochs, [h.get(key) for h in history], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        ax2.plot(epochs, [h.get(key) for h in history], marker="o", label=label)
    ax1.set_title("loss")
    ax2.set_title("accuracy")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
