"""What a finished run leaves behind: model.pth, the calibrated model.onnx (and its int8
twin), model.json with the verdicts' operating point, and the report."""

from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bincounter.labels import CountRange
from bincounter.metrics import evaluate_counts
from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, MODEL_PTH, ModelCard
from bincounter.monitoring import reference
from bincounter.preprocess import PreprocessSpec
from bincounter.training.environment import TrainingEnv
from bincounter.training.export import export_onnx
from bincounter.training.failures import TrainingDiverged
from bincounter.training.models import build_model
from bincounter.training.operating_point import Targets, operating_point
from bincounter.training.int8_checks import Criteria, markdown
from bincounter.training.quantize import candidates, quantize_model
from bincounter.training.recipe import Head
from bincounter.training.report import verdict_section, write_report

log = logging.getLogger(__name__)
VERSIONED = ("bincounter", "torch", "torchvision", "onnx", "onnxruntime", "numpy", "pillow")


def check_finite(state: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise TrainingDiverged(
            f"training diverged: {len(bad)} of {len(state)} weight tensors hold NaN or infinity "
            f"(first: {bad[0]}); no model was written. Lower lr or raise warmup-epochs")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_reference(model_dir: Path, probabilities: np.ndarray, labels: np.ndarray, classes: list[int],
                    rule, int8_served: bool) -> dict:
    """The monitor's reference distributions of the test split, beside model.json; what the
    card says of them."""
    doc = reference.build(probabilities, labels, classes, rule)
    (model_dir / reference.REFERENCE_FILE).write_text(json.dumps(doc), encoding="utf-8")
    note = ("the fp32 graph's calibrated probabilities (the int8 twin is served; its top-1 agreement "
            "with fp32 is in quantization)") if int8_served else "the served graph's calibrated probabilities"
    return {"reference": reference.REFERENCE_FILE, "split": doc["split"], "n": doc["n"], "of": note}


def write_outputs(env: TrainingEnv, model: nn.Module, head: Head, spec: PreprocessSpec,
                  count_range: CountRange, test_loader, history: list[dict], fit: tuple[str, dict],
                  test: dict, splits: dict, extra: dict, sections: list[str],
                  labels: dict | None = None) -> ModelCard:
    """The model files and the report: weights, the calibrated ONNX graph, model.json with
    its operating point, evaluation.md / .json and figures. ``fit`` (the split's name and its
    results: "validation", or "calibration" for that channel) and ``test`` are the final
    model's ``Trainer.evaluate`` results; the temperature and thresholds are fitted on ``fit``."""
    hp = env.hp
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    # before anything is written: a NaN model would otherwise surface as an
    # unexplained ONNX parity failure, after model.pth was already saved
    check_finite(state)
    env.model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, env.model_dir / MODEL_PTH)
    point = operating_point(head, fit[1], test, count_range, Targets(
        hp.max_false_match, hp.max_false_mismatch, hp.verdict_guarantee, hp.verdict_confidence), fit[0])
    # export a fresh copy: the trained instance carries smdebug's forward hooks
    clean = head.replace(build_model(hp.arch, head.outputs, pretrained=False))
    clean.load_state_dict(state)
    batch = next(b for b in test_loader if b is not None)[0][:8]
    parity = export_onnx(clean, batch, env.model_dir / MODEL_ONNX, to_probabilities=head.probabilities,
                         temperature=point.temperature)
    quantization = {}
    if hp.quantize:
        # the int8 twin is judged at the thresholds just chosen, against the user's false-match target
        quantization = quantize_model(
            env.model_dir, MODEL_ONNX, splits, spec, count_range.counts,
            point.thresholds, Criteria(hp.int8_max_drop, max_false_match=hp.max_false_match),
            candidates(hp.int8_calibration_images), seed=hp.seed, threads=env.cpus_per_process)
        sections = [*sections, *markdown(quantization)]
    # what a server answers: the arg-max of the calibrated probabilities (an ordinal
    # head's can differ from the raw outputs')
    counts = np.asarray(count_range.counts)
    ev = evaluate_counts(counts[test["targets"]], counts[point.test_probabilities.argmax(1)], count_range.counts)
    monitor = write_reference(env.model_dir, point.test_probabilities, counts[test["targets"]],
                              count_range.counts, point.thresholds, int8_served=bool(quantization.get("served")))
    card = ModelCard(
        classes=count_range.counts, preprocess=spec, arch=hp.arch,
        verification=point.thresholds, operating_point=point.verification, calibration=point.calibration,
        onnx_file=MODEL_INT8_ONNX if quantization.get("served") else MODEL_ONNX, quantization=quantization,
        metrics={"test": {"accuracy": ev.accuracy, "rmse": ev.rmse, "loss": test["loss"], "n": ev.n},
                 "validation": {k: history[-1][k] for k in ("val_loss", "val_accuracy", "val_rmse")}
                 if history else {}},
        versions=versions(), monitor=monitor,
        training={"hyperparameters": hp.to_dict(), "split_sizes": {k: len(v) for k, v in splits.items()},
                  "onnx_parity_max_abs_diff": parity, "head": head.kind, "labels": labels or {}})
    card.write(env.model_dir)
    report = write_report(env.output_data_dir, ev, history, {"model": card.to_dict(), **extra},
                          sections + verdict_section(card), figures=point)
    log.info("test accuracy %.2f %%, RMSE %.3f; report %s\n%s", ev.accuracy * 100, ev.rmse,
             report, ev.table())
    return card
