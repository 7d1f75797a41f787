"""The int8 twin of a trained model, and whether ``model.json`` names it for serving.

``quantize_model`` runs after the ONNX export. It writes ``model.int8.onnx`` with
ONNX Runtime static quantization: ``quant_pre_process`` first (ONNX Runtime's
guide: optimise while pre-processing, not while quantizing), then QDQ with uint8
activations and int8 per-channel weights, calibrated on training images read
through the shared preprocessing. Both graphs then answer the whole test split
through the server's own session (``serving.session.open_session``), and
``decide`` keeps int8 only when its accuracy drops by at most ``int8-max-drop``
points, its RMSE rises by at most ``MAX_RMSE_RISE`` and its false-match rate
still meets the target. The section it returns goes into ``model.json``.
The ONNX Runtime facts this relies on are in docs/platform.md §9.
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bincounter.metadata import Sample
from bincounter.metrics import evaluate_counts
from bincounter.modelcard import MODEL_INT8_ONNX, ONNX_INPUT, ONNX_OUTPUT
from bincounter.preprocess import ImageDecodeError, ImageTooLargeError, PreprocessSpec, preprocess_bytes
from bincounter.serving.session import open_session, run_batches
from bincounter.training.hyperparameters import PARAMS
from bincounter.verification import Thresholds, make_asks, measure

log = logging.getLogger(__name__)
# chosen by measurement (benchmarks/bench_quantize.py; README "Serving speed and int8")
CALIBRATION = "MinMax"
# the calibrator holds this many images' activations at once (ResNet50 at 224 px:
# ~100 MB each), so memory stays flat whatever the calibration size
CALIBRATION_STRIDE = 8
MAX_RMSE_RISE = 0.02
EVAL_CHUNK = 256       # test images decoded and held at once
LATENCY_IMAGES = 16    # real test inputs timed one by one, per model
EPS = 1e-9             # equal metrics must not fail a comparison on float noise


@dataclass(frozen=True)
class Recipe:
    """How the int8 graph is made; the defaults are what training does."""
    calibration: str = CALIBRATION            # onnxruntime CalibrationMethod: MinMax, Entropy, Percentile
    images: int = PARAMS["int8-calibration-images"].default  # at most the training split
    activations: str = "QUInt8"               # QuantType of activations (weights: QInt8, per channel)
    reduce_range: bool = False                # 7-bit weights (non-VNNI saturation guard)

    def to_dict(self) -> dict:
        return {"format": "QDQ", "weights": "QInt8 per channel", "pre_process": "quant_pre_process",
                **asdict(self)}


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


def calibration_set(train: Sequence[Sample], spec: PreprocessSpec, images: int, seed: int) -> np.ndarray:
    """``images`` training images drawn by ``seed`` (all of a smaller split), preprocessed,
    cut to a multiple of the calibrator's stride."""
    pool = sorted(train, key=lambda s: s.id)
    chosen = random.Random(seed).sample(pool, min(images, len(pool)))
    x, _, _ = read_inputs(chosen, spec)
    if len(x) == 0:
        raise ValueError("no training image could be decoded for calibration")
    stride = min(CALIBRATION_STRIDE, len(x))
    return x[: len(x) // stride * stride]


def output_nodes(model: Path) -> list[str]:
    """The nodes that write ``probabilities``: left in float, because a quantized Softmax
    answers in steps of 1/255 whose sum is not 1 (the serving contract's probabilities are)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return [n.name for n in graph.node if ONNX_OUTPUT in n.output]


def write_int8(fp32: Path, int8: Path, calibration: np.ndarray, recipe: Recipe) -> None:
    """``fp32`` -> ``int8``: static QDQ quantization calibrated on ``calibration`` (N x 3 x S x S)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process, quantize_static)

    class Reader(CalibrationDataReader):
        # ``set_range`` + ``__len__``: quantize_static then collects CalibStridedMinMax images
        # at a time (despite its name, for every method), so memory stays bounded
        def __init__(self) -> None:
            self.next, self.end = 0, len(calibration)

        def __len__(self) -> int:
            return len(calibration)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.next, self.end = start_index, end_index

        def get_next(self):
            if self.next >= self.end:
                return None
            self.next += 1
            return {ONNX_INPUT: calibration[self.next - 1: self.next]}

    with tempfile.TemporaryDirectory(prefix="int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        nodes_to_exclude=output_nodes(pre),
                        reduce_range=recipe.reduce_range, activation_type=QuantType[recipe.activations],
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod[recipe.calibration],
                        extra_options={"CalibStridedMinMax": min(CALIBRATION_STRIDE, len(calibration))})


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


def scores(probs: np.ndarray, counts: np.ndarray, classes: list[int], thresholds: Thresholds) -> dict:
    """Accuracy, RMSE and the verdicts' operating point at ``thresholds``, each with its n."""
    ev = evaluate_counts(counts, np.asarray(classes)[probs.argmax(1)], classes)
    point = measure(make_asks(probs, counts, classes), thresholds)
    point.pop("per_expected")
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


def quantize_model(model_dir: Path, fp32_file: str, train: Sequence[Sample], test: Sequence[Sample],
                   spec: PreprocessSpec, classes: list[int], thresholds: Thresholds, criteria: Criteria,
                   recipe: Recipe = Recipe(), seed: int = 0, threads: int = 1) -> dict:
    """Write ``model.int8.onnx`` beside ``fp32_file`` and measure both; the card's section.

    ``served`` says whether the card should name int8, ``reasons`` why not. A run whose
    quantization fails keeps fp32 and says so: the fp32 model is already complete."""
    t0 = time.monotonic()
    fp32, int8 = model_dir / fp32_file, model_dir / MODEL_INT8_ONNX
    section = {"file": MODEL_INT8_ONNX, "recipe": recipe.to_dict(),
               "criteria": {**asdict(criteria), "thresholds": asdict(thresholds)}}
    try:
        calibration = calibration_set(train, spec, recipe.images, seed)
        write_int8(fp32, int8, calibration, recipe)
        section["recipe"]["images"] = len(calibration)
        written = time.monotonic()
        probs, counts, bad = answer({"fp32": fp32, "int8": int8}, test, spec, threads)
        speed_inputs, _, _ = read_inputs(test[:LATENCY_IMAGES + 2], spec)
        ms = ms_per_image({"fp32": fp32, "int8": int8}, speed_inputs)
    except Exception as exc:  # noqa: BLE001 - any failure here leaves a complete fp32 model to serve
        log.exception("int8: quantization failed; model.json keeps %s", fp32_file)
        int8.unlink(missing_ok=True)
        return {**section, "served": False, "reasons": [f"quantization failed: {type(exc).__name__}: {exc}"]}
    result = {name: scores(p, counts, classes, thresholds) for name, p in probs.items()}
    reasons = decide(result["fp32"], result["int8"], criteria)
    section.update(
        served=not reasons, reasons=reasons,
        test={**result, "top1_agreement": float((probs["fp32"].argmax(1) == probs["int8"].argmax(1)).mean()),
              "max_abs_probability_difference": float(np.abs(probs["fp32"] - probs["int8"]).max()),
              "left_out": bad},
        speed={"ms_per_image": ms, "batch": 1, "intra_op_threads": 1,
               "int8_speedup": round(ms["fp32"] / ms["int8"], 2) if ms.get("int8") else None,
               "measured_on": "the training host, not the serving instance", "host": host()},
        seconds={"calibrate_and_write": round(written - t0, 1), "total": round(time.monotonic() - t0, 1)})
    log.info("int8: %s; accuracy %.2f %% vs fp32 %.2f %%, top-1 agreement %.1f %%, %.1f vs %.1f ms per "
             "image at batch 1 (%.0f s)", "served" if not reasons else "fp32 served: " + "; ".join(reasons),
             result["int8"]["accuracy"] * 100, result["fp32"]["accuracy"] * 100,
             section["test"]["top1_agreement"] * 100, ms.get("int8", 0), ms.get("fp32", 0),
             section["seconds"]["total"])
    return section


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
    return ["## int8", "", f"{section['recipe']['calibration']} calibration on {section['recipe']['images']} "
            f"training images; test n={t['int8']['n']}, top-1 agreement {t['top1_agreement'] * 100:.1f} %; "
            f"ms per image at batch 1, one thread, on the training host. int8 {verdict}.", "", *rows, ""]


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
