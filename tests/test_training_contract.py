"""train.py under the real sagemaker-training toolkit on a temporary /opt/ml tree."""

from __future__ import annotations

import json
import re

import onnx
import pytest

from bincounter.modelcard import ModelCard
from bincounter.training.metriclog import METRIC_DEFINITIONS
from bincounter.guarantees import miss_lines
from toolkit_helpers import make_opt_ml, run_toolkit_train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(trained_run):
    """The session's run, which has a calibration channel (tests/conftest.py)."""
    return trained_run


def test_toolkit_train_exits_zero_and_reports_success(finished_run):
    base, proc = finished_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (base / "output" / "success").exists()
    assert not (base / "output" / "failure").exists()


def test_model_dir_holds_the_three_files_that_describe_each_other(finished_run):
    base, _ = finished_run
    model_dir = base / "model"
    assert {"model.pth", "model.onnx", "model.json"} <= {p.name for p in model_dir.iterdir()}
    card = ModelCard.read(model_dir)
    assert card.classes == [1, 2, 3, 4, 5]
    assert card.preprocess.image_size == 64 and card.arch == "resnet18"
    assert card.versions["torch"] == "2.14.1"
    assert card.training["onnx_parity_max_abs_diff"] <= 1e-4
    graph = onnx.load(str(model_dir / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["probabilities", "embedding"]
    # quantize=false (the test tree's setting): no int8 twin, and the card serves fp32
    assert not (model_dir / "model.int8.onnx").exists()
    assert card.onnx_file == "model.onnx" and card.quantization == {}


def test_the_monitors_reference_lies_beside_model_json_with_the_test_splits_answers(finished_run):
    base, _ = finished_run
    card = ModelCard.read(base / "model")
    ref = json.loads((base / "model" / card.monitor["reference"]).read_text())
    n = card.metrics["test"]["n"]
    assert card.monitor["n"] == ref["n"] == n and ref["split"] == "test"
    assert len(ref["counted"]) == len(ref["p_counted"]) == len(ref["entropy"]) == n
    assert set(ref["counted"]) <= set(card.classes) and all(0 <= e <= 1 for e in ref["entropy"])
    # the counted class is the arg-max: its probability is at least 1 / classes
    assert min(ref["p_counted"]) >= 1 / len(card.classes) - 1e-6
    assert sum(ref["verdicts"].values()) == n  # one correct ask per photo
    # the accuracy measured here is the card's, and its estimate is the mean probability
    assert ref["measured"]["accuracy"] == pytest.approx(card.metrics["test"]["accuracy"])
    assert ref["measured"]["accuracy_estimate"] == pytest.approx(sum(ref["p_counted"]) / n, abs=1e-4)


def test_model_json_carries_per_count_thresholds_fitted_on_the_calibration_channel(finished_run):
    base, proc = finished_run
    card = ModelCard.read(base / "model")
    assert card.calibration["temperature"] > 0 and card.calibration["split"] == "calibration"
    assert card.calibration["n"] == 70
    assert card.calibration["test_ece_before"] >= 0 and card.calibration["test_ece_after"] >= 0
    op = card.operating_point
    assert op["targets"] == {"max_false_match": 0.2, "max_false_mismatch": 0.2}  # the fixture's
    assert op["guarantee"] == "conformal" and op["fitted_on"] == "calibration"
    assert sorted(card.verification.by_count) == card.classes
    fitted, test = op["measured"]["calibration"], op["measured"]["test"]
    assert fitted["false_mismatch_n"] == 70
    # conformal: on its own calibration asks each count's side errs on fewer than target x n of them
    for count, rates in fitted["per_expected"].items():
        for rate, n in (("false_match_rate", "false_match_n"), ("false_mismatch_rate", "false_mismatch_n")):
            if rates[n]:
                assert rates[rate] * rates[n] < 0.2 * (rates[n] + 1), (count, rates)
    unmet = {(u["count"], u["verdict"]) for u in op["unmet"]}
    for count, pair in card.verification.by_count.items():  # a side that cannot fire says what it needs
        assert (pair.match_at is None) == ((str(count), "match") in unmet)
        assert (pair.mismatch_at is None) == ((str(count), "mismatch") in unmet)
    assert 0 <= test["auto_share"] <= 1 and set(test["per_expected"]) == {"1", "2", "3", "4", "5"}
    # the 10 photos also in the training channel did not train: 190 left for train/validation/test
    sizes = card.training["split_sizes"]
    assert sizes["calibration"] == 70 and sizes["train"] + sizes["validation"] + sizes["test"] == 190
    assert "10 of its 70 photos are also in the training channel" in proc.stdout + proc.stderr
    report = (base / "output" / "data" / "evaluation.md").read_text()
    assert "## Verdicts" in report and "## Calibration" in report and "| expected count | match at p ≥" in report
    flags = miss_lines(card.served_test_point(), op["targets"])  # the report flags exactly these
    assert all(line in report for line in flags) and bool(flags) == ("Above target" in report)
    for png in ("reliability_diagram.png", "coverage_risk.png"):
        assert (base / "output" / "data" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_documented_metric_regex_parses_the_log(finished_run):
    _, proc = finished_run
    log = proc.stdout + proc.stderr
    for definition in METRIC_DEFINITIONS:
        values = [float(m) for m in re.findall(definition["Regex"], log)]
        assert values, f"{definition['Name']} not found in the training log"
    val_acc = [float(v) for v in re.findall(METRIC_DEFINITIONS[3]["Regex"], log)]
    assert len(val_acc) == 2 and all(0.0 <= v <= 1.0 for v in val_acc)  # one per epoch


def test_evaluation_report_has_abid_table_and_figures(finished_run):
    base, _ = finished_run
    out = base / "output" / "data"
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["test"]["per_class"]) == {"1", "2", "3", "4", "5"}
    assert sum(v["n"] for v in report["test"]["per_class"].values()) == report["test"]["n"]
    assert "| all |" in (out / "evaluation.md").read_text()
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    split = {k: {s["id"] for s in v} for k, v in json.loads((out / "split.json").read_text())["splits"].items()}
    # 190 training-channel photos split three ways, and the calibration channel's 70 on their own
    assert sum(len(v) for k, v in split.items() if k != "calibration") == 190 and len(split["calibration"]) == 70
    shared = {f"{i:05d}" for i in range(1, 11)}
    assert shared <= split["calibration"] and not shared & (split["train"] | split["validation"] | split["test"])


def test_broken_channel_fails_with_a_readable_reason(tmp_path):
    empty = tmp_path / "empty_channel"
    (empty / "metadata").mkdir(parents=True)
    (empty / "images").mkdir()
    base = make_opt_ml(tmp_path / "opt_ml", {"training": empty})
    proc = run_toolkit_train(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert reason.startswith("NoUsableDataError: no usable labelled image")
    assert not (base / "model" / "model.onnx").exists()


def test_bad_hyperparameter_fails_with_a_readable_reason(tmp_path, synthetic_bins):
    base = make_opt_ml(tmp_path / "opt_ml", {"training": synthetic_bins}, {"epochs": "three"})
    proc = run_toolkit_train(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert "HyperparameterError" in reason and "--epochs" in reason and "three" in reason


def test_pretrained_without_weights_fails_instead_of_training_from_scratch(tmp_path, synthetic_bins):
    base = make_opt_ml(tmp_path / "opt_ml", {"training": synthetic_bins}, {"pretrained": "true"})
    proc = run_toolkit_train(base, extra_env={"TORCH_HOME": str(tmp_path / "no_weights")})
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert reason.startswith("PretrainedWeightsUnavailable") and "pretrained=false" in reason


def test_diverged_training_fails_with_a_readable_reason_and_writes_no_model(tmp_path, synthetic_bins):
    base = make_opt_ml(tmp_path / "opt_ml", {"training": synthetic_bins},
                       {"lr": "1e12", "epochs": "1", "warmup-epochs": "0", "image-size": "32",
                        "profile-steps": "0"})
    proc = run_toolkit_train(base)
    assert proc.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert reason.startswith("TrainingDiverged: training diverged:") and "NaN or infinity" in reason
    assert "Lower lr" in reason
    assert not (base / "model").exists() or not any((base / "model").iterdir())
