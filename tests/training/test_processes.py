"""Several training processes on one host: the world math, the processes-per-host
setting, the supervisor's failure and SIGTERM handling, and one real DDP run of
two processes under the toolkit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import toy_workers
from bincounter.training.distributed import World, plan
from bincounter.training.environment import HyperparameterError, TrainingEnv
from bincounter.training.workers import supervise
from devtools.local_serve import free_port
from scale_helpers import start_toolkit, write_config
from toolkit_helpers import TINY, make_opt_ml

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("host_index, hosts, per_host, local_rank, rank, size", [
    (0, 1, 1, 0, 0, 1),   # one process: no distributed set-up
    (1, 2, 1, 0, 1, 2),   # one process per host: rank = host index
    (0, 1, 2, 1, 1, 2),   # one host, two processes
    (1, 2, 4, 3, 7, 8),   # host by host: algo-2's last GPU
])
def test_global_rank_and_size_come_host_by_host(host_index, hosts, per_host, local_rank, rank, size):
    assert plan(host_index, hosts, per_host, local_rank) == World(rank=rank, size=size, local_rank=local_rank)


def test_every_global_rank_is_taken_exactly_once():
    ranks = [plan(h, 3, 4, i).rank for h in range(3) for i in range(4)]
    assert sorted(ranks) == list(range(12))


@pytest.mark.parametrize("host_index, local_rank", [(0, 2), (2, 0), (0, -1)])
def test_a_place_outside_the_world_is_refused(host_index, local_rank):
    with pytest.raises(ValueError, match="no place"):
        plan(host_index, 2, 2, local_rank)


def test_each_process_drives_the_gpu_of_its_local_rank():
    world = plan(1, 2, 4, 3)
    assert world.device(cuda=True) == torch.device("cuda", 3)
    assert world.device(cuda=False) == torch.device("cpu")


def _env(tmp_path, argv=(), **environ) -> TrainingEnv:
    return TrainingEnv.resolve(list(argv), {"SAGEMAKER_BASE_DIR": str(tmp_path), **environ})


def test_processes_per_host_default_one_per_gpu_else_one(tmp_path):
    gpu = _env(tmp_path, SM_NUM_GPUS="4", SM_NUM_CPUS="32")
    assert (gpu.processes_per_host, gpu.cpus_per_process) == (4, 8)
    cpu = _env(tmp_path, SM_NUM_GPUS="0", SM_NUM_CPUS="2")
    assert (cpu.processes_per_host, cpu.cpus_per_process) == (1, 2)


def test_processes_per_host_override_splits_the_cpus(tmp_path):
    env = _env(tmp_path, ["--processes-per-host", "2"], SM_NUM_GPUS="0", SM_NUM_CPUS="5")
    assert (env.processes_per_host, env.cpus_per_process) == (2, 2)
    assert env.hp.to_dict()["processes-per-host"] == 2


@pytest.mark.parametrize("argv, gpus, message", [
    (["--processes-per-host", "0"], "0", "must be >= 1"),
    (["--processes-per-host", "3"], "2", "more than the 2 GPUs"),
])
def test_impossible_processes_per_host_is_a_hyperparameter_error(tmp_path, argv, gpus, message):
    with pytest.raises(HyperparameterError, match=message):
        _env(tmp_path, argv, SM_NUM_GPUS=gpus)


def test_supervisor_succeeds_when_every_worker_does():
    assert supervise(toy_workers.succeed, 2) == (0, "")


def test_a_failed_worker_ends_the_others_after_the_grace_and_its_reason_is_reported():
    t0 = time.monotonic()
    code, reason = supervise(toy_workers.rank_1_fails_rank_0_hangs, 2, grace_s=1)
    assert (code, reason) == (1, "RuntimeError: boom [local rank 1]")
    assert time.monotonic() - t0 < 60  # the hanging peer was killed, not waited for


def test_the_first_failure_is_reported_not_the_ones_it_caused():
    code, reason = supervise(toy_workers.rank_0_dies_rank_1_fails_after, 2)
    assert (code, reason) == (137, "training process killed by SIGKILL [local rank 0]")


def test_sigterm_to_the_supervisor_alone_reaches_every_worker(tmp_path):
    # as when train.py is the container's PID 1 (docker run IMAGE python train.py): the
    # workers are not signalled with it, only through the supervisor
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout); "
            "import toy_workers; from bincounter.training.workers import supervise; "
            f"c, r = supervise(toy_workers.stop_when_asked, 2, ({str(tmp_path)!r},)); "
            "print('verdict', c, r, flush=True); sys.exit(c)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "started 2 training processes" in line:
            break
    # the workers may still be starting: their SIGTERM waits for their handler
    os.kill(proc.pid, signal.SIGTERM)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, out
    assert re.search(r"verdict 143 Interrupted: stopped by SIGTERM \[local rank [01]\]", out), out
    assert "local rank 0 failed (exit 143)" in out and "local rank 1 failed (exit 143)" in out


def _one_host_two_processes(base, channel, extra: dict | None = None) -> Path:
    base = make_opt_ml(base, {"training": channel}, {**TINY, "epochs": "1", "processes-per-host": "2",
                                                     **(extra or {})})
    write_config(base, "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"],
                                               "network_interface_name": "lo"})
    return base


@pytest.mark.slow
def test_one_host_two_processes_average_gradients_and_write_one_model(tmp_path, tiny_bins):
    base = _one_host_two_processes(tmp_path / "opt_ml", tiny_bins, {"checkpoint-steps": "0"})
    run = start_toolkit(base, {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})
    log = run.communicate(timeout=600)[0]
    assert run.returncode == 0, log[-3000:]

    assert "as rank 0 of 2" in log and "as rank 1 of 2" in log
    # each rank trained on its own half (rank::2) of the 80 images, yet they end with
    # the same weights: DDP averaged the gradients (independent ranks would differ)
    digests = {rank: d for d, rank in re.findall(r"final weights sha256 (\w+) \(rank (\d) of 2\)", log)}
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], log[-3000:]
    assert re.search(r"epoch 1 step 5/5 loss", log)  # 40 images a rank, batches of 8

    # one model, one report, one set of metric lines: from rank 0
    assert sorted(p.name for p in (base / "model").iterdir()) == ["model.json", "model.onnx", "model.pth",
                                                                  "monitor_reference.json"]
    assert len(re.findall(r"test accuracy .* report", log)) == 1
    assert len(re.findall(r"#metrics epoch=1 split=test", log)) == 1
    # the test split (10 images) gathered from both ranks' halves
    assert json.loads((base / "output" / "data" / "evaluation.json").read_text())["test"]["n"] == 10
    assert not (base / "output" / "failure").exists()


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_both_processes_with_a_checkpoint(tmp_path, tiny_bins):
    base = _one_host_two_processes(tmp_path / "opt_ml", tiny_bins, {"checkpoint-steps": "0"})
    run = start_toolkit(base, {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())},
                        launcher=True)
    lines = []
    for line in run.stdout:
        lines.append(line)
        if "epoch 1 step 2/5 loss" in line:
            break
    assert lines and "epoch 1 step 2/5 loss" in lines[-1], "".join(lines[-50:])
    run.send_signal(signal.SIGTERM)
    log = "".join(lines) + run.communicate(timeout=120)[0]  # EOF: every process has ended
    assert run.returncode != 0, log[-3000:]
    failure = (base / "output" / "failure").read_text()
    # the rank whose flag was still clear at that step's all-reduce says "a peer"
    assert re.match(r"Interrupted: stopped by (SIGTERM|a peer) at epoch 1 step ", failure), failure
    assert re.search(r"\[local rank [01]\]$", failure), failure
    saved = sorted(p.name for p in (base / "checkpoints").glob("checkpoint-*.pt"))
    assert len(saved) == 1 and 2 <= int(saved[0][len("checkpoint-"):-3]) < 5, saved
    assert not (base / "model" / "model.onnx").exists()


FAULT_IN_RANK_1 = """
_train = pipeline.train


def _faulty(env, stop, world, device):
    if world.rank == 1:
        raise RuntimeError("injected fault")
    return _train(env, stop, world, device)


pipeline.train = _faulty

"""


@pytest.mark.slow
def test_a_failing_process_fails_the_run_with_its_own_reason(tmp_path, tiny_bins):
    base = _one_host_two_processes(tmp_path / "opt_ml", tiny_bins)
    # a fault in rank 1 only, injected by this run's copy of the entry point: rank 0 is
    # left waiting for it in the first all-reduce. At module level, so that the spawned
    # workers, which import the main module again, run it too.
    code = base / "code" / "train.py"
    anchor = 'if __name__ == "__main__":\n'
    assert anchor in code.read_text()
    code.write_text(code.read_text().replace(anchor, FAULT_IN_RANK_1 + anchor))
    run = start_toolkit(base, {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})
    t0 = time.monotonic()
    log = run.communicate(timeout=300)[0]
    assert run.returncode == 1, log[-3000:]
    # rank 0's own error (its peer's sockets closed) came later: not the reason
    assert (base / "output" / "failure").read_text() == "RuntimeError: injected fault [local rank 1]"
    assert time.monotonic() - t0 < 120, "rank 0 was not ended promptly"
    assert not (base / "model" / "model.pth").exists()

