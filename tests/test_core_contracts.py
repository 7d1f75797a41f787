"""Small contracts of the core: labels, model card, synthetic bins, torch-free imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bincounter.labels import CountRange
from bincounter.metadata import read_expected_quantity, scan_dataset
from bincounter.modelcard import ModelCard, ModelCardError
from bincounter.verification import Thresholds, VerdictRule
from bincounter.preprocess import PreprocessSpec
from bincounter.synth import generate


def test_count_and_class_index_round_trip_and_reject_outsiders():
    r = CountRange(1, 5)
    assert [r.to_index(c) for c in r.counts] == [0, 1, 2, 3, 4]
    assert [r.counts[r.to_index(c)] for c in r.counts] == r.counts
    for bad in (0, 6):
        with pytest.raises(ValueError):
            r.to_index(bad)


def test_torch_free_core_modules_do_not_import_torch():
    code = ("import sys, bincounter.labels, bincounter.preprocess, bincounter.metadata, "
            "bincounter.modelcard, bincounter.metrics, bincounter.split, bincounter.synth, "
            "bincounter.training.metriclog, bincounter.training.environment, "
            "bincounter.training.debugger; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_training_pipeline_imports_without_the_web_server():
    # the training image has no Flask, gunicorn or werkzeug (requirements/serving.in only);
    # training still measures its models through the server's ONNX Runtime session
    code = ("import sys\nfor m in ('flask', 'gunicorn', 'werkzeug'): sys.modules[m] = None\n"
            "import bincounter.training.pipeline, bincounter.serving.session; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_model_card_round_trips_and_rejects_foreign_schemas(tmp_path):
    card = ModelCard(classes=[1, 2, 3, 4, 5], preprocess=PreprocessSpec(112), arch="resnet18",
                     verification=VerdictRule(Thresholds(None, None), ((1, Thresholds(None, 0.05)),
                                                                       (2, Thresholds(0.8, 0.1)))),
                     calibration={"temperature": 1.7},
                     operating_point={"targets": {"max_false_match": 0.01, "max_false_mismatch": 0.05},
                                      "measured": {"test": {"false_match_rate": 0.0, "false_match_n": 300}}})
    card.write(tmp_path)
    assert ModelCard.read(tmp_path) == card
    doc = json.loads((tmp_path / "model.json").read_text())
    assert doc["verification"]["per_count"]["1"] == {"match_at": None, "mismatch_at": 0.05}
    for bad, why in (({"9": {"match_at": 0.5, "mismatch_at": 0.1}}, "outside classes"),
                     ({"2": {"match_at": 0.1, "mismatch_at": 0.5}}, "mismatch_at < match_at"),
                     (["2"], "schema")):
        (tmp_path / "model.json").write_text(json.dumps({**doc, "verification": {**doc["verification"],
                                                                                 "per_count": bad}}))
        with pytest.raises(ModelCardError, match=why):
            ModelCard.read(tmp_path)
    doc["schema_version"] = 99
    (tmp_path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelCardError, match="schema_version"):
        ModelCard.read(tmp_path)


def test_a_version_1_card_still_serves_with_its_thresholds(tmp_path):
    doc = {"schema_version": 1, "classes": [1, 2, 3, 4, 5], "arch": "resnet18",
           "preprocess": PreprocessSpec(64).to_dict(), "onnx": {"file": "model.onnx"},
           "verification": {"match_at": 0.6, "mismatch_at": 0.2}}
    (tmp_path / "model.json").write_text(json.dumps(doc))
    card = ModelCard.read(tmp_path)
    assert card.verification == VerdictRule(Thresholds(0.6, 0.2)) and card.operating_point == {} and card.calibration == {}
    # one pair for every expected count
    assert {card.verification.verdict(0.7, q) for q in card.classes} == {"match"}


@pytest.mark.parametrize("p, verdict", [(0.9, "match"), (0.5, "match"), (0.3, "review"),
                                        (0.1, "mismatch"), (0.0, "mismatch")])
def test_verification_verdicts_follow_the_thresholds(p, verdict):
    assert Thresholds(match_at=0.5, mismatch_at=0.1).verdict(p) == verdict


def test_synthetic_bins_follow_the_abid_layout_and_schema(tmp_path):
    root = generate(tmp_path / "bins", n=25, seed=3, size=64)
    samples, report = scan_dataset(root)
    assert report.layout == "abid" and len(samples) == 25
    assert sorted({s.count for s in samples}) == [1, 2, 3, 4, 5]
    doc = json.loads((root / "metadata" / "00004.json").read_text())
    assert doc["EXPECTED_QUANTITY"] == sum(e["quantity"] for e in doc["BIN_FCSKU_DATA"].values())
    assert read_expected_quantity(root / "metadata" / "00004.json") == 4
    again = generate(tmp_path / "again", n=25, seed=3, size=64)
    assert (again / "images" / "00007.jpg").read_bytes() == (root / "images" / "00007.jpg").read_bytes()
