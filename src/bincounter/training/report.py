"""The evaluation report (the ABID challenge's per-count table, the run's profile,
the rule verdicts) as evaluation.md / evaluation.json, and its figures.

No published baseline is printed beside the numbers: a run on synthetic bins
must not read as comparable with results on the real dataset (README "Recipe
benchmark" has the real-data comparisons)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in a training container
import matplotlib.pyplot as plt  # noqa: E402

from bincounter.metrics import Evaluation  # noqa: E402


def write_report(out_dir: Path, evaluation: Evaluation, history: list[dict], extra: dict,
                 sections: list[str] | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"test": evaluation.to_dict(), "history": history, **extra}
    (out_dir / "evaluation.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    md = [f"# Evaluation on the test split ({evaluation.n} images)", "",
          f"Accuracy {evaluation.accuracy * 100:.2f} %, RMSE {evaluation.rmse:.3f}", "",
          evaluation.table(), "", *(sections or [])]
    (out_dir / "evaluation.md").write_text("\n".join(md), encoding="utf-8")
    plot_confusion(evaluation, out_dir / "confusion_matrix.png")
    plot_curves(history, out_dir / "training_curves.png")
    return out_dir / "evaluation.md"


def profile_section(profile: dict) -> list[str]:
    """Markdown lines: the data-wait share, the system monitor's summary, the top ops."""
    timing = profile["step_timing"]
    lines = ["## Throughput", "",
             f"Data-wait share of step time: {timing['data_wait_share'] * 100:.1f} % "
             f"({timing['data_wait_s']:.1f} s waiting, {timing['compute_s']:.1f} s computing, "
             f"{timing['steps']} steps).", "", _system_line(profile["system"]), ""]
    if profile["top_ops"]:
        lines += ["| op | calls | self CPU ms | share |", "|---|---|---|---|"]
        lines += [f"| {o['op']} | {o['calls']} | {o['self_cpu_ms']} | {o['share'] * 100:.1f} % |"
                  for o in profile["top_ops"]] + [""]
    return lines


def _system_line(system: dict) -> str:
    if not system.get("samples"):
        return "System monitor: no samples (run shorter than one interval)."
    line = (f"System monitor ({system['samples']} samples every {system['interval_s']} s): CPU mean "
            f"{system['cpu_percent_mean']} %, max {system['cpu_percent_max']} %; process RSS max "
            f"{system['rss_mb_max']} MB; memory in use max {system['mem_used_mb_max']} MB")
    return line + (f"; GPU memory max {system['gpu_mem_mb_max']} MB." if "gpu_mem_mb_max" in system else ".")


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
