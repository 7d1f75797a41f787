"""The smdebug hook writes a trial that smdebug reads back."""

from __future__ import annotations

import os

import pytest

from toolkit_helpers import make_opt_ml, run_toolkit_train

pytestmark = pytest.mark.slow


def test_hook_tensors_read_back_with_create_trial(tmp_path, synthetic_bins):
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    from smdebug.trials import create_trial

    base = make_opt_ml(tmp_path / "opt_ml", {"training": synthetic_bins},
                       {"debug-hook": "true", "epochs": "1"})
    proc = run_toolkit_train(base)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    trial = create_trial(str(base / "output" / "tensors"))
    collections = trial.collections()
    for name in ("weights", "gradients", "biases", "losses"):
        assert trial.tensor_names(collection=name), f"collection {name} is empty"
    assert "losses" in collections
    loss = trial.tensor_names(regex="CrossEntropyLoss_output_0")
    assert loss
    from smdebug.core.modes import ModeKeys
    train_steps = trial.tensor(loss[0]).steps(mode=ModeKeys.TRAIN)
    assert len(train_steps) == 160 // 16  # losses every train step (10 steps of 16 images)
    weight = trial.tensor_names(collection="weights")[0]
    assert trial.tensor(weight).steps(mode=ModeKeys.TRAIN) == [0, 5]  # train.save_interval 5
