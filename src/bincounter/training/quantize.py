"""The int8 twin of a trained model, and whether ``model.json`` names it for serving.

``quantize_model`` runs after the ONNX export. It writes ``model.int8.onnx`` with
ONNX Runtime static quantization: ``quant_pre_process`` first (ONNX Runtime's
guide: optimise while pre-processing, not while quantizing), then QDQ with uint8
activations and int8 per-channel weights, calibrated on training images read
through the shared preprocessing. Each tensor's range is either the mean over
those images of each image's min and max, or the extremes of all of them: each is
written, and the one whose answers agree with fp32's more often on the validation
split is kept. Both graphs then answer the whole test split through the server's
own session, and ``int8_checks.decide`` keeps int8 only where its answers hold.
The section it returns goes into ``model.json``.
The ONNX Runtime facts this relies on are in docs/platform.md §9.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bincounter.metadata import Sample
from bincounter.modelcard import MODEL_INT8_ONNX, ONNX_INPUT, ONNX_OUTPUT
from bincounter.preprocess import PreprocessSpec
from bincounter.training.hyperparameters import PARAMS
from bincounter.training.int8_checks import (LATENCY_IMAGES, Criteria, answer, decide, host, ms_per_image,
                                             read_inputs, scores)
from bincounter.verification import VerdictRule

log = logging.getLogger(__name__)
# chosen by measurement (benchmarks/bench_quantize.py; docs/serving.md "Serving speed and int8"):
# the extremes of 256 images set ranges ~3x wider than a typical image's on a
# from-scratch ResNet50 (one trunk tensor: 291 against a typical 100), and the
# rounding error of ~100 such tensors in series left int8 agreeing with fp32 on a
# third of the test photos; the mean of the per-image ranges agreed on 94 %. On a
# ResNet18 the extremes did a little better, so training tries both (``candidates``)
CALIBRATION = "MinMax"
RANGES = "mean"
# the histogram methods hold this many images' activations at once (ResNet50 at
# 224 px: ~100 MB each), so memory stays flat whatever the calibration size;
# MinMax keeps two numbers per tensor and image
CALIBRATION_STRIDE = 8


@dataclass(frozen=True)
class Recipe:
    """How the int8 graph is made; the defaults are what training does."""
    calibration: str = CALIBRATION            # onnxruntime CalibrationMethod: MinMax, Entropy, Percentile
    ranges: str = RANGES                      # MinMax only: "mean" of per-image ranges, or "extreme"
    images: int = PARAMS["int8-calibration-images"].default  # at most the training split
    activations: str = "QUInt8"               # QuantType of activations (weights: QInt8, per channel)
    reduce_range: bool = False                # 7-bit weights (non-VNNI saturation guard)

    def __post_init__(self) -> None:
        if self.ranges not in ("mean", "extreme"):
            raise ValueError(f"ranges {self.ranges!r}: expected 'mean' or 'extreme'")

    @property
    def name(self) -> str:
        return f"{self.calibration} {self.ranges}" if self.calibration == "MinMax" else self.calibration

    def extra_options(self, images: int) -> dict:
        """``quantize_static``'s calibration options for ``images`` calibration images. Mean
        ranges are ONNX Runtime's MinMax moving average over one pass: with strides it would
        weigh the first images most."""
        if self.calibration == "MinMax" and self.ranges == "mean":
            return {"CalibMovingAverage": True}
        return {"CalibStridedMinMax": min(CALIBRATION_STRIDE, images)}

    def to_dict(self) -> dict:
        out = {"format": "QDQ", "weights": "QInt8 per channel", "pre_process": "quant_pre_process",
               **asdict(self)}
        if self.calibration != "MinMax":
            out.pop("ranges")
        return out


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


def write_int8(fp32: Path, targets: dict[Path, Recipe], calibration: np.ndarray) -> None:
    """``fp32`` -> each target path: static QDQ quantization by its recipe, calibrated on
    ``calibration`` (N x 3 x S x S); the fp32 graph is pre-processed once for all of them."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process, quantize_static)

    class Reader(CalibrationDataReader):
        # ``set_range`` + ``__len__``: with CalibStridedMinMax quantize_static collects that
        # many images at a time (despite its name, for every method), so memory stays bounded
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
        keep_float = output_nodes(pre)
        for int8, recipe in targets.items():
            quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            nodes_to_exclude=keep_float, reduce_range=recipe.reduce_range,
                            activation_type=QuantType[recipe.activations], weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod[recipe.calibration],
                            extra_options=recipe.extra_options(len(calibration)))


def candidates(images: int) -> tuple[Recipe, ...]:
    """What training tries, best first on a tie: neither range rule won on every model
    (docs/serving.md "Serving speed and int8")."""
    return tuple(Recipe(images=images, ranges=r) for r in ("mean", "extreme"))


def choose(fp32: Path, int8: Path, recipes: Sequence[Recipe], calibration: np.ndarray,
           validation: Sequence[Sample], spec: PreprocessSpec, threads: int) -> tuple[Recipe, dict]:
    """Write each recipe's int8 graph and keep at ``int8`` the one whose answers agree with
    fp32's most often on ``validation`` (the test split stays for the verdict on it);
    (the recipe, how it was chosen). A single recipe, or no validation photo, is no choice."""
    if len(recipes) == 1 or not validation:
        write_int8(fp32, {int8: recipes[0]}, calibration)
        return recipes[0], {}
    with tempfile.TemporaryDirectory(prefix="int8-choice-") as tmp:
        paths = {r.name: Path(tmp) / f"{i}.onnx" for i, r in enumerate(recipes)}
        write_int8(fp32, {paths[r.name]: r for r in recipes}, calibration)
        probs, _, _ = answer({"fp32": fp32, **paths}, validation, spec, threads)
        agreement = {r.name: float((probs[r.name].argmax(1) == probs["fp32"].argmax(1)).mean()) for r in recipes}
        best = max(recipes, key=lambda r: agreement[r.name])  # max keeps the first of equals
        # a move, not a rename: the temporary folder and /opt/ml/model (a mount in the
        # training container) are different file systems
        shutil.move(paths[best.name], int8)
    log.info("int8: top-1 agreement with fp32 on %d validation photos: %s; keeping %s", len(probs["fp32"]),
             ", ".join(f"{k} {v * 100:.1f} %" for k, v in agreement.items()), best.name)
    return best, {"by": "top-1 agreement with fp32 on the validation split", "n": len(probs["fp32"]),
                  "top1_agreement": agreement}


def quantize_model(model_dir: Path, fp32_file: str, splits: dict[str, Sequence[Sample]],
                   spec: PreprocessSpec, classes: list[int], thresholds: VerdictRule, criteria: Criteria,
                   recipes: Sequence[Recipe] = candidates(Recipe().images), seed: int = 0,
                   threads: int = 1) -> dict:
    """Write ``model.int8.onnx`` beside ``fp32_file`` and measure both; the card's section.

    ``splits``: "train" calibrates, "validation" chooses among ``recipes``, "test" measures.
    ``served`` says whether the card should name int8, ``reasons`` why not. A run whose
    quantization fails keeps fp32 and says so: the fp32 model is already complete."""
    t0 = time.monotonic()
    fp32, int8 = model_dir / fp32_file, model_dir / MODEL_INT8_ONNX
    test = splits["test"]
    section = {"file": MODEL_INT8_ONNX, "recipe": recipes[0].to_dict(),
               "criteria": {**asdict(criteria), "thresholds": thresholds.to_dict()}}
    try:
        calibration = calibration_set(splits["train"], spec, recipes[0].images, seed)
        recipe, choice = choose(fp32, int8, recipes, calibration, splits.get("validation", []), spec, threads)
        section["recipe"] = {**recipe.to_dict(), "images": len(calibration)}
        if choice:
            section["choice"] = choice
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


