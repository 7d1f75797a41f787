"""Debugger rules evaluated by us on the saved smdebug trial, not by a managed service."""

from __future__ import annotations

import json
import os

import pytest

from bincounter.training.rules import RULES, evaluate_rules

# smdebug's generated protobuf code is deprecated by protobuf 5+; not ours to fix
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]



def _verdicts(base) -> dict:
    report = json.loads((base / "output" / "data" / "evaluation.json").read_text())
    return {r["rule"]: r for r in report["rules"]}


@pytest.fixture(scope="module")
def healthy_run(instrumented_run):
    """The session's instrumented run: plain cross-entropy at lr 0.001, the hook on."""
    return instrumented_run


def test_a_run_with_lr_10_trips_loss_not_decreasing(diverging_run):
    base, proc = diverging_run
    verdict = _verdicts(base)["LossNotDecreasing"]
    assert verdict["status"] == "IssuesFound" and verdict["violations"] >= 1, verdict
    assert "rule LossNotDecreasing: IssuesFound" in proc.stdout
    assert "| LossNotDecreasing | IssuesFound |" in (base / "output" / "data" / "evaluation.md").read_text()


def test_a_healthy_short_run_does_not_trip_loss_not_decreasing(healthy_run):
    base, proc = healthy_run
    verdicts = _verdicts(base)
    assert set(verdicts) == set(RULES)
    assert verdicts["LossNotDecreasing"]["status"] == "NoIssuesFound", verdicts["LossNotDecreasing"]
    assert verdicts["LossNotDecreasing"]["steps_checked"] >= 1  # it compared, not just found nothing
    assert verdicts["VanishingGradient"]["status"] == "NoIssuesFound"
    assert verdicts["VanishingGradient"]["steps_checked"] > 0
    assert "rule LossNotDecreasing: NoIssuesFound" in proc.stdout


def test_evaluate_rules_on_a_trial_path_gives_the_same_verdicts_as_the_run(healthy_run):
    base, _ = healthy_run
    again = {r["rule"]: r for r in evaluate_rules(str(base / "output" / "tensors"))}
    assert {k: v["status"] for k, v in again.items()} == \
        {k: v["status"] for k, v in _verdicts(base).items()}


def test_the_saved_trial_reads_back_with_all_four_collections_at_their_intervals(healthy_run):
    base, _ = healthy_run
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    from smdebug.core.modes import ModeKeys
    from smdebug.trials import create_trial

    trial = create_trial(str(base / "output" / "tensors"))
    for name in ("weights", "gradients", "biases", "losses"):
        assert trial.tensor_names(collection=name), f"collection {name} is empty"
    loss = trial.tensor_names(collection="losses")[0]
    assert len(trial.tensor(loss).steps(mode=ModeKeys.TRAIN)) == 20  # every step of 2 x 10
    assert trial.tensor_names(regex="CrossEntropyLoss_output_0")  # the head's criterion, registered
    weight = trial.tensor_names(collection="weights")[0]
    assert trial.tensor(weight).steps(mode=ModeKeys.TRAIN) == [0, 5, 10, 15]  # train.save_interval 5


def test_evaluate_rules_on_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_trial"):
        evaluate_rules(str(tmp_path / "no_such_trial"))


def test_evaluate_rules_says_how_to_fix_a_process_that_loaded_the_wrong_protobuf_runtime(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    code = ("import onnx\nfrom bincounter.training.rules import evaluate_rules\n"
            f"evaluate_rules({str(tmp_path)!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python" in proc.stderr
