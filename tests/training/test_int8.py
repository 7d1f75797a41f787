"""The int8 twin: written by a toolkit run, measured against fp32, named by model.json
only where its answers hold."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from bincounter.metadata import Sample
from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, ModelCard
from bincounter.preprocess import PreprocessSpec, preprocess_bytes
from bincounter.training.int8_checks import Criteria, decide, read_inputs
from bincounter.training.quantize import Recipe, quantize_model, write_int8
from bincounter.verification import VerdictRule


def scores(accuracy: float, rmse: float, false_match: float | None, n: int = 600) -> dict:
    return {"accuracy": accuracy, "rmse": rmse, "n": n,
            "verification": {"false_match_rate": false_match, "false_match_n": 900}}


CRITERIA = Criteria(max_accuracy_drop=1.0, max_false_match=0.01)


def test_int8_that_answers_like_fp32_may_be_served():
    assert decide(scores(0.35, 1.20, 0.008), scores(0.35, 1.20, 0.008), CRITERIA) == []


def test_accuracy_may_drop_by_exactly_int8_max_drop_points_and_no_more():
    assert decide(scores(0.35, 1.2, 0.0), scores(0.34, 1.2, 0.0), CRITERIA) == []
    reasons = decide(scores(0.35, 1.2, 0.0), scores(0.3383, 1.2, 0.0), CRITERIA)
    assert reasons == ["accuracy drops 1.17 points (35.00 % -> 33.83 %, n=600) > int8-max-drop 1"]


def test_a_negative_int8_max_drop_refuses_even_identical_answers():
    reasons = decide(scores(0.35, 1.2, 0.0), scores(0.35, 1.2, 0.0), Criteria(-1.0, 0.01))
    assert len(reasons) == 1 and "int8-max-drop -1" in reasons[0]


def test_rmse_may_rise_by_at_most_0_02():
    assert decide(scores(0.35, 1.20, 0.0), scores(0.35, 1.22, 0.0), CRITERIA) == []
    assert decide(scores(0.35, 1.20, 0.0), scores(0.35, 1.23, 0.0), CRITERIA) == [
        "RMSE rises 0.030 (1.200 -> 1.230) > 0.02"]


def test_the_false_match_rate_must_still_meet_its_target():
    reasons = decide(scores(0.35, 1.2, 0.008), scores(0.35, 1.2, 0.012), CRITERIA)
    assert reasons == ["false-match rate 0.0120 (n=900) misses its target 0.01 (fp32: 0.0080)"]


def test_where_fp32_already_misses_the_target_int8_must_be_no_worse():
    assert decide(scores(0.35, 1.2, 0.02), scores(0.35, 1.2, 0.02), CRITERIA) == []
    reasons = decide(scores(0.35, 1.2, 0.02), scores(0.35, 1.2, 0.03), CRITERIA)
    assert reasons == ["false-match rate 0.0300 (n=900) exceeds fp32's 0.0200, which already misses "
                       "the target 0.01"]


def test_every_failed_bound_is_a_reason():
    assert len(decide(scores(0.35, 1.2, 0.0), scores(0.30, 1.3, 0.05), CRITERIA)) == 3


def test_an_undecodable_image_is_left_out_by_name(tmp_path, tiny_bins):
    good = sorted((tiny_bins / "images").glob("*.jpg"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    samples = [Sample(p.stem, p, 1) for p in good] + [Sample("broken", bad, 2)]
    x, counts, left_out = read_inputs(samples, PreprocessSpec(image_size=32))
    assert x.shape == (2, 3, 32, 32) and counts.tolist() == [1, 1]
    assert left_out == [str(bad)]


def test_a_quantization_that_fails_keeps_fp32_and_says_why(tmp_path, tiny_bins):
    (tmp_path / MODEL_ONNX).write_bytes(b"not an onnx graph")
    images = sorted((tiny_bins / "images").glob("*.jpg"))[:8]
    samples = [Sample(p.stem, p, 1 + i % 5) for i, p in enumerate(images)]
    section = quantize_model(tmp_path, MODEL_ONNX, {"train": samples, "validation": samples, "test": samples},
                             PreprocessSpec(image_size=32),
                             [1, 2, 3, 4, 5], VerdictRule(), CRITERIA)
    assert section["served"] is False and section["reasons"][0].startswith("quantization failed: ")
    assert not (tmp_path / MODEL_INT8_ONNX).exists()


@pytest.mark.slow
def test_a_quantizing_run_writes_the_int8_twin_with_the_serving_contracts_names(quantized_model):
    graph = onnx.load(str(quantized_model / MODEL_INT8_ONNX)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["probabilities", "embedding"]
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # static QDQ, not a copy of fp32
    assert (quantized_model / MODEL_ONNX).is_file()


@pytest.mark.slow
def test_the_int8_twins_probabilities_sum_to_one_like_fp32s(quantized_model, tiny_bins):
    # the output Softmax stays float: quantized, it answers in steps of 1/255 that sum to 0.996
    from bincounter.serving.session import open_session

    spec = ModelCard.read(quantized_model).preprocess
    x = np.stack([preprocess_bytes(p.read_bytes(), spec) for p in sorted((tiny_bins / "images").glob("*.jpg"))[:16]])
    probs = open_session(quantized_model / MODEL_INT8_ONNX).run(["probabilities"], {"input": x})[0]
    assert probs.shape == (16, 5) and np.abs(probs.sum(axis=1) - 1).max() < 1e-5


@pytest.mark.slow
def test_model_json_records_both_models_and_says_why_fp32_is_named(quantized_model):
    card = ModelCard.read(quantized_model)
    q = card.quantization
    # int8-max-drop -100: int8 would have to gain 100 points, so fp32 is named
    assert card.onnx_file == MODEL_ONNX and q["served"] is False
    # the accuracy rule first; the RMSE and false-match rules may add their own, by how this
    # model quantizes (which moves with the torch threads it trained on)
    assert "int8-max-drop -100" in q["reasons"][0]
    assert all(r.startswith(("RMSE rises", "false-match rate")) for r in q["reasons"][1:]), q["reasons"]
    assert q["file"] == MODEL_INT8_ONNX and q["recipe"]["calibration"] == "MinMax"
    # both range rules were written; the one agreeing with fp32 more often on validation is kept
    agreement = q["choice"]["top1_agreement"]
    assert set(agreement) == {"MinMax mean", "MinMax extreme"} and q["choice"]["n"] == 10
    # the better one, or on a tie (the tiny model agrees fully either way) the first candidate
    best = next(r for r in ("mean", "extreme") if agreement[f"MinMax {r}"] == max(agreement.values()))
    assert q["recipe"]["ranges"] == best
    assert q["recipe"]["images"] == 80  # the whole tiny training split (TINY: 80 images)
    for name in ("fp32", "int8"):
        m = q["test"][name]
        assert m["n"] == 10 and 0 <= m["accuracy"] <= 1 and m["rmse"] >= 0
        assert m["verification"]["false_match_n"] > 0 and 0 <= m["verification"]["false_match_rate"] <= 1
        assert q["speed"]["ms_per_image"][name] > 0
    assert 0 <= q["test"]["top1_agreement"] <= 1 and q["test"]["max_abs_probability_difference"] > 0
    assert q["speed"]["host"]["cpus"] >= 1 and "training host" in q["speed"]["measured_on"]
    # torch's fp32 test accuracy is the card's metric; ONNX Runtime's fp32 gives the same answers
    assert q["test"]["fp32"]["accuracy"] == pytest.approx(card.metrics["test"]["accuracy"])
    # judged at the operating point training chose, against the user's target: the fp32 graph
    # (calibrated, through the server's session) measures what the card's verification says
    assert q["criteria"]["thresholds"] == card.verification.to_dict()
    assert q["criteria"]["max_false_match"] == card.operating_point["targets"]["max_false_match"]
    measured = card.operating_point["measured"]["test"]
    for key in ("false_match_rate", "false_match_n", "false_mismatch_rate", "auto_share"):
        assert q["test"]["fp32"]["verification"][key] == pytest.approx(measured[key]), key


@pytest.mark.slow
def test_the_report_shows_fp32_against_int8_with_the_decision(quantized_model):
    out = quantized_model.parent / "output" / "data"
    md = (out / "evaluation.md").read_text()
    assert "## int8" in md and "| fp32 |" in md and "| int8 |" in md and "not served: accuracy drops" in md
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["model"]["quantization"]["served"] is False
    assert np.isfinite(doc["model"]["quantization"]["test"]["int8"]["rmse"])


@pytest.mark.slow
def test_the_rates_a_card_states_are_those_of_the_graph_it_names(quantized_model, int8_model):
    from orchestrate.audit.report import operating_point

    fp32, int8 = ModelCard.read(quantized_model), ModelCard.read(int8_model)
    assert fp32.served_test_point() == fp32.operating_point["measured"]["test"]
    assert int8.served_test_point() == int8.quantization["test"]["int8"]["verification"]
    assert any("(model.int8.onnx)" in line for line in operating_point(int8))


def input_scale(int8_graph) -> float:
    """The scale the int8 graph quantizes its input with."""
    graph = onnx.load(str(int8_graph)).graph
    node = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    return float(next(onnx.numpy_helper.to_array(i) for i in graph.initializer if i.name == node.input[1]))


@pytest.mark.slow
@pytest.mark.parametrize("ranges", ["mean", "extreme"])
def test_a_tensors_int8_range_follows_its_recipes_range_rule(quantized_model, tiny_bins, tmp_path, ranges):
    # the extremes of a few hundred images set ResNet50 ranges ~3x a typical image's and
    # int8 agreed with fp32 on a third of the test photos; the mean agreed on 94 %
    spec = ModelCard.read(quantized_model).preprocess
    x = np.stack([preprocess_bytes(p.read_bytes(), spec)
                  for p in sorted((tiny_bins / "images").glob("*.jpg"))[:16]])
    x[3] *= 4  # one image far outside the others, as the rare bright photo is
    write_int8(quantized_model / MODEL_ONNX, {tmp_path / "int8.onnx": Recipe(ranges=ranges)}, x)
    lows, highs = x.reshape(len(x), -1).min(1), x.reshape(len(x), -1).max(1)
    expected = (highs.mean() - lows.mean()) / 255 if ranges == "mean" else (highs.max() - lows.min()) / 255
    assert input_scale(tmp_path / "int8.onnx") == pytest.approx(expected, rel=1e-5)


def test_a_recipe_refuses_ranges_it_does_not_know():
    with pytest.raises(ValueError, match="ranges 'median'"):
        Recipe(ranges="median")


@pytest.mark.slow
def test_the_kept_int8_graph_lands_in_a_model_folder_on_another_file_system(quantized_model, tiny_bins):
    # /opt/ml/model is a mount in the training container: the candidate graphs are written in
    # the temporary folder, so keeping one must copy across file systems, not rename
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("no second file system (/dev/shm) beside the temporary folder")
    images = sorted((tiny_bins / "images").glob("*.jpg"))[:16]
    samples = [Sample(p.stem, p, 1 + i % 5) for i, p in enumerate(images)]
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        shutil.copy(quantized_model / MODEL_ONNX, folder)
        section = quantize_model(Path(folder), MODEL_ONNX, {"train": samples, "validation": samples,
                                                            "test": samples},
                                 ModelCard.read(quantized_model).preprocess, [1, 2, 3, 4, 5], VerdictRule(), CRITERIA)
        assert "test" in section, section.get("reasons")
        assert set(os.listdir(folder)) == {MODEL_ONNX, MODEL_INT8_ONNX}  # the other candidate is not left
