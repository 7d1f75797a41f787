"""The evaluation report (the ABID challenge's per-count table, the run's profile,
the rule verdicts) as evaluation.md / evaluation.json, and its figures.

No published baseline is printed beside the numbers: a run on synthetic bins
must not read as comparable with results on the real dataset (benchmarks/README.md "Recipe
benchmark" has the real-data comparisons)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display in a training container
import matplotlib.pyplot as plt  # noqa: E402

from bincounter.guarantees import miss_lines  # noqa: E402
from bincounter.metrics import Evaluation  # noqa: E402
from bincounter.modelcard import MODEL_ONNX  # noqa: E402
from bincounter.verification import threshold_text  # noqa: E402

if TYPE_CHECKING:
    from bincounter.modelcard import ModelCard
    from bincounter.training.operating_point import OperatingPoint


def write_report(out_dir: Path, evaluation: Evaluation, history: list[dict], extra: dict,
                 sections: list[str] | None = None, figures: "OperatingPoint | None" = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"test": evaluation.to_dict(), "history": history, **extra}
    if figures is not None:
        doc["figures"] = {"reliability": figures.reliability, "coverage": figures.curve}
    (out_dir / "evaluation.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    md = [f"# Evaluation on the test split ({evaluation.n} images)", "",
          f"Accuracy {evaluation.accuracy * 100:.2f} %, RMSE {evaluation.rmse:.3f}", "",
          evaluation.table(), "", *(sections or [])]
    (out_dir / "evaluation.md").write_text("\n".join(md), encoding="utf-8")
    plot_confusion(evaluation, out_dir / "confusion_matrix.png")
    plot_curves(history, out_dir / "training_curves.png")
    if figures is not None:
        plot_reliability(figures.reliability, out_dir / "reliability_diagram.png")
        plot_coverage(figures.curve, extra["model"]["verification"]["measured"]["test"],
                      out_dir / "coverage_risk.png")
    return out_dir / "evaluation.md"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def _of(rates: dict, rate: str, n: str) -> str:
    return f"{_pct(rates[rate])} of {rates[n]:,}" if rates[n] else "no asks"


def verdict_section(card: "ModelCard") -> list[str]:
    """Markdown: the guarantee, each expected count's thresholds and test rates, the pooled
    operating point on both splits, every count above its target, and the calibration
    (docs/verdicts.md defines every rate)."""
    op, cal, rule = card.operating_point, card.calibration, card.verification
    targets, measured = op["targets"], op["measured"]
    fitted = op.get("fitted_on", "validation")
    val, test = measured[fitted], measured["test"]
    lines = ["## Verdicts", "",
             f"`match` at p ≥ match_at, `mismatch` at p ≤ mismatch_at, `review` between (p: the calibrated "
             f"probability of the expected count). Targets: false match ≤ {_pct(targets['max_false_match'])}, "
             f"false mismatch ≤ {_pct(targets['max_false_mismatch'])}, {op.get('promise', 'pooled')}. "
             f"Chosen on the {fitted} split ({val['false_mismatch_n']:,} photos): {op['method']}.", "",
             "| expected count | match at p ≥ | mismatch at p ≤ | auto share (test) | false match (test) "
             "| false mismatch (test) |", "|---|---|---|---|---|---|"]
    for c, r in sorted(test["per_expected"].items(), key=lambda kv: int(kv[0])):
        t = rule.for_count(int(c))
        lines.append(f"| {c} | {threshold_text(t.match_at)} | {threshold_text(t.mismatch_at)} | {_pct(r['auto_share'])} "
                     f"| {_of(r, 'false_match_rate', 'false_match_n')} "
                     f"| {_of(r, 'false_mismatch_rate', 'false_mismatch_n')} |")
    lines += ["", f"| all counts pooled | target | {fitted} | test |", "|---|---|---|---|",
              f"| false match (asks one off) | ≤ {_pct(targets['max_false_match'])} "
              f"| {_of(val, 'false_match_rate', 'false_match_n')} | {_of(test, 'false_match_rate', 'false_match_n')} |",
              f"| false mismatch (correct asks) | ≤ {_pct(targets['max_false_mismatch'])} "
              f"| {_of(val, 'false_mismatch_rate', 'false_mismatch_n')} "
              f"| {_of(test, 'false_mismatch_rate', 'false_mismatch_n')} |",
              f"| false match (asks two off) | | {_of(val, 'false_match_rate_two_off', 'false_match_two_off_n')} "
              f"| {_of(test, 'false_match_rate_two_off', 'false_match_two_off_n')} |",
              f"| auto share (no review) | | {_pct(val['auto_share'])} | {_pct(test['auto_share'])} |", ""]
    lines += target_flags(card)
    lines += [f"Note: {note}" for note in op.get("notes", [])] + ([""] if op.get("notes") else [])
    lines += ["## Calibration", "",
              f"Temperature T = {cal['temperature']:g} ({cal['method']}). NLL on the {fitted} split "
              f"{cal['validation_nll_before']:.4f} → {cal['validation_nll_after']:.4f}; expected calibration "
              f"error on the test split ({cal['ece_bins']} bins) {cal['test_ece_before']:.4f} → "
              f"{cal['test_ece_after']:.4f}. Figures: reliability_diagram.png, coverage_risk.png.", ""]
    return lines


def target_flags(card: "ModelCard") -> list[str]:
    """Markdown: every expected count whose measured test rate (of the served graph) is above
    its target, with n and the interval; or one line saying none is."""
    point, targets = card.served_test_point(), card.operating_point.get("targets")
    if not point or not targets:
        return []
    graph = f" ({card.onnx_file})" if card.onnx_file != MODEL_ONNX else ""
    found = miss_lines(point, targets)
    if not found:
        return [f"Every expected count is within its targets on the test split{graph}.", ""]
    return [f"**Above target on the test split{graph}:**", "", *[f"- {line}" for line in found], ""]


def plot_reliability(bins: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for key, label in (("before", "raw outputs"), ("after", "after temperature scaling")):
        ax.plot([b["confidence"] for b in bins[key]], [b["accuracy"] for b in bins[key]], marker="o", label=label)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability on the test split")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_coverage(curve: list[dict], chosen: dict, path: Path) -> None:
    """The curve of one ``match_at`` for every count, and the chosen thresholds' test point."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    points = [c for c in curve if c["false_match_rate"] is not None]
    ax.plot([c["false_match_rate"] * 100 for c in points], [c["auto_share"] * 100 for c in points], marker=".",
            label="one match_at for every count")
    if chosen.get("false_match_rate") is not None and chosen.get("auto_share") is not None:
        ax.plot([chosen["false_match_rate"] * 100], [chosen["auto_share"] * 100], "r*", markersize=14,
                label="chosen thresholds")
    ax.legend()
    ax.set_xlabel("false-match rate on the test split (%)")
    ax.set_ylabel("auto share (%)")
    ax.set_title("auto share vs false matches")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
