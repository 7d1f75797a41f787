"""Spot safety: a SIGTERM mid-epoch saves a checkpoint, a restart resumes there,
and the result is the uninterrupted run's, bit for bit."""

from __future__ import annotations

import logging
import re
import signal
import time

import pytest
import torch

from bincounter.training import checkpoint
from scale_helpers import start_toolkit
from toolkit_helpers import TINY, make_opt_ml, run_toolkit_train

STOP_AFTER = "epoch 1 step 4/10"


@pytest.mark.slow
def test_sigterm_mid_epoch_then_restart_resumes_and_matches_an_uninterrupted_run(tmp_path, tiny_bins):
    straight = make_opt_ml(tmp_path / "straight", {"training": tiny_bins}, TINY)
    proc = run_toolkit_train(straight)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    spot = make_opt_ml(tmp_path / "spot", {"training": tiny_bins}, TINY)
    # the launcher is what a container runs as PID 1: SIGTERM goes to it alone, as from docker stop
    run = start_toolkit(spot, launcher=True)
    lines = []
    for line in run.stdout:
        lines.append(line)
        if STOP_AFTER in line:
            break
    assert any(STOP_AFTER in line for line in lines), "".join(lines[-50:])
    signalled = time.monotonic()
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=120)
    stopped_in = time.monotonic() - signalled
    log = "".join(lines) + rest
    assert run.returncode != 0, log[-3000:]
    assert stopped_in < 60, f"took {stopped_in:.0f} s to stop after SIGTERM (SageMaker kills at 120 s)"
    assert (spot / "output" / "failure").read_text().startswith("Interrupted: stopped by SIGTERM at epoch 1")
    state, path = checkpoint.load_latest(spot / "checkpoints")
    assert state["epoch"] == 1 and 4 <= state["step"] < 10, (path, state["epoch"], state["step"])
    assert not (spot / "model" / "model.onnx").exists()

    (spot / "output" / "failure").unlink()
    resumed = run_toolkit_train(spot)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {path} at epoch 1 step {state['step']}/10" in resumed.stdout
    # only the batches after the saved step were trained on again
    steps_run = re.findall(r"epoch 1 step (\d+)/10 loss", resumed.stdout)
    assert [int(s) for s in steps_run] == list(range(state["step"] + 1, 11))

    a = torch.load(straight / "model" / "model.pth", weights_only=True)
    b = torch.load(spot / "model" / "model.pth", weights_only=True)
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"resumed model differs from the uninterrupted one in {differing[:5]}"
    metric = re.compile(r"#metrics epoch=2 split=test .*")
    assert metric.findall(proc.stdout) == metric.findall(resumed.stdout)


def test_a_corrupt_newest_checkpoint_is_skipped_for_the_previous_one_with_a_warning(tmp_path, caplog):
    older = checkpoint.save_checkpoint({"epoch": 1, "step": 3}, tmp_path, step=3)
    newest = checkpoint.save_checkpoint({"epoch": 1, "step": 6}, tmp_path, step=6)
    newest.write_bytes(newest.read_bytes()[:100])  # a copy cut short (S3 sync, full disk)
    with caplog.at_level(logging.WARNING, logger="bincounter.training.checkpoint"):
        state, path = checkpoint.load_latest(tmp_path)
    assert path == older and state == {"epoch": 1, "step": 3}
    assert any("skipped corrupt checkpoint" in r.message and newest.name in r.message
               for r in caplog.records)


def test_a_temporary_file_from_a_killed_save_is_never_taken_for_a_checkpoint(tmp_path):
    checkpoint.save_checkpoint({"epoch": 2, "step": 0}, tmp_path, step=10)
    (tmp_path / "checkpoint-000000013.pt.tmp").write_bytes(b"half a checkpoint")
    state, path = checkpoint.load_latest(tmp_path)
    assert path.name == "checkpoint-000000010.pt" and state["epoch"] == 2
