"""How an int8 twin measures against its fp32 model, and whether it may be served.

Both graphs answer through the server's own session (``serving.session``), so what is
measured here is what a server would answer; ``decide`` applies the bounds a run sets
(``int8-max-drop``, ``MAX_RMSE_RISE``, the verdict's false-match target).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bincounter.metadata import Sample
from bincounter.metrics import evaluate_counts
from bincounter.modelcard import ONNX_INPUT, ONNX_OUTPUT
from bincounter.preprocess import ImageDecodeError, ImageTooLargeError, PreprocessSpec, preprocess_bytes
from bincounter.serving.session import open_session, run_batches
from bincounter.verification import VerdictRule, make_asks, measure

log = logging.getLogger(__name__)
MAX_RMSE_RISE = 0.02
EVAL_CHUNK = 256       # test images decoded and held at once
LATENCY_IMAGES = 16    # real test inputs timed one by one, per model
EPS = 1e-9             # equal metrics must not fail a comparison on float noise


@dataclass(frozen=True)
class Criteria:
    """When int8 may be served: every bound holds on the test split."""
    max_accuracy_drop: float                  # percentage points (int8-max-drop)
    max_false_match: float                    # the verdict's false-match target
    max_rmse_rise: float = MAX_RMSE_RISE


def read_inputs(samples: Sequence[Sample], spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each sample's file bytes through ``preprocess_bytes``, as the server treats a request:
    (N x 3 x S x S, counts, the files that failed to decode, which are left out)."""
    arrays, counts, bad = [], [], []
    for s in samples:
        try:
            arrays.append(preprocess_bytes(s.image_path.read_bytes(), spec))
            counts.append(s.count)
        except (OSError, ImageDecodeError, ImageTooLargeError) as exc:
            log.warning("int8: left out %s: %s", s.image_path, exc)
            bad.append(str(s.image_path))
    size = spec.image_size
    x = np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)
    return x, np.asarray(counts, np.int64), bad


def answer(paths: dict[str, Path], samples: Sequence[Sample], spec: PreprocessSpec,
           threads: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Every model's probabilities for every decodable sample, read ``EVAL_CHUNK`` at a time."""
    sessions = {name: open_session(path, threads) for name, path in paths.items()}
    probs: dict[str, list] = {name: [] for name in paths}
    counts, bad = [], []
    for start in range(0, len(samples), EVAL_CHUNK):
        x, y, b = read_inputs(samples[start:start + EVAL_CHUNK], spec)
        bad += b
        if not len(x):
            continue
        counts.append(y)
        for name, session in sessions.items():
            probs[name].append(run_batches(session, x))
    if not counts:
        raise ValueError("no test image could be decoded")
    return {k: np.concatenate(v) for k, v in probs.items()}, np.concatenate(counts), bad


def ms_per_image(paths: dict[str, Path], x: np.ndarray) -> dict[str, float]:
    """Median milliseconds per image at batch 1 with one ONNX Runtime thread (the server's
    layout: one such worker per core); the models take turns on each image."""
    sessions = {name: open_session(path, 1) for name, path in paths.items()}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for i, image in enumerate(x):
        for name, session in sessions.items():
            t0 = time.perf_counter()
            session.run([ONNX_OUTPUT], {ONNX_INPUT: image[None]})
            if i >= 2:  # the first runs pay for allocations
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: round(statistics.median(t), 2) for name, t in times.items() if t}


def host() -> dict:
    """Where a speed was measured: the CPU and whether it has the int8 dot-product (VNNI)."""
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name", "unknown"), "cpus": os.cpu_count(),
            "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
            "avx2": "avx2" in flags, "load_average": round(os.getloadavg()[0], 2)}


def scores(probs: np.ndarray, counts: np.ndarray, classes: list[int], thresholds: VerdictRule) -> dict:
    """Accuracy, RMSE and the verdicts' operating point at ``thresholds`` (per expected count
    too: the served graph's per-count rates are what the reports hold against the targets)."""
    ev = evaluate_counts(counts, np.asarray(classes)[probs.argmax(1)], classes)
    point = measure(make_asks(probs, counts, classes), thresholds)
    return {"accuracy": ev.accuracy, "rmse": ev.rmse, "n": ev.n, "verification": point}


def decide(fp32: dict, int8: dict, criteria: Criteria) -> list[str]:
    """Why int8 must not be served (empty: it may be)."""
    reasons = []
    drop = (fp32["accuracy"] - int8["accuracy"]) * 100
    if drop > criteria.max_accuracy_drop + EPS:
        reasons.append(f"accuracy drops {drop:.2f} points ({fp32['accuracy'] * 100:.2f} % -> "
                       f"{int8['accuracy'] * 100:.2f} %, n={int8['n']}) > int8-max-drop "
                       f"{criteria.max_accuracy_drop:g}")
    rise = int8["rmse"] - fp32["rmse"]
    if rise > criteria.max_rmse_rise + EPS:
        reasons.append(f"RMSE rises {rise:.3f} ({fp32['rmse']:.3f} -> {int8['rmse']:.3f}) > "
                       f"{criteria.max_rmse_rise:g}")
    ours, theirs = int8["verification"], fp32["verification"]
    target, rate, base = criteria.max_false_match, ours["false_match_rate"], theirs["false_match_rate"] or 0.0
    # "still meets its target": where fp32 itself misses it on test, int8 must be no worse
    if rate is not None and rate > max(target, base) + EPS:
        reasons.append(f"false-match rate {rate:.4f} (n={ours['false_match_n']}) "
                       + (f"misses its target {target:g} (fp32: {base:.4f})" if base <= target else
                          f"exceeds fp32's {base:.4f}, which already misses the target {target:g}"))
    return reasons


def markdown(section: dict) -> list[str]:
    """The report's int8 section."""
    if "test" not in section:
        return ["## int8", "", f"Not served: {'; '.join(section['reasons'])}", ""]
    t, ms = section["test"], section["speed"]["ms_per_image"]
    rows = ["| model | accuracy % | RMSE | false-match rate | false-mismatch rate | auto share | ms/image |",
            "|---|---|---|---|---|---|---|"]
    for name in ("fp32", "int8"):
        m, v = t[name], t[name]["verification"]
        rows.append(f"| {name} | {m['accuracy'] * 100:.2f} | {m['rmse']:.3f} | {_rate(v['false_match_rate'])} "
                    f"| {_rate(v['false_mismatch_rate'])} | {_rate(v['auto_share'])} | {ms.get(name, 'n/a')} |")
    verdict = "served (model.json names model.int8.onnx)" if section["served"] else \
        "not served: " + "; ".join(section["reasons"])
    recipe, choice = section["recipe"], section.get("choice")
    chosen = "" if not choice else " (chosen by top-1 agreement with fp32 on {} validation photos: {})".format(
        choice["n"], ", ".join(f"{k} {v * 100:.1f} %" for k, v in choice["top1_agreement"].items()))
    ranges = f" ({recipe['ranges']} ranges)" if "ranges" in recipe else ""
    return ["## int8", "", f"{recipe['calibration']} calibration{ranges} on "
            f"{recipe['images']} training images{chosen}; test n={t['int8']['n']}, top-1 agreement "
            f"{t['top1_agreement'] * 100:.1f} %; ms per image at batch 1, one thread, on the training host. "
            f"int8 {verdict}.", "", *rows, ""]


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
