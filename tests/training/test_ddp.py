"""Two hosts as two local toolkit processes: one DDP training, not two trainings."""

from __future__ import annotations

import json
import re

import pytest

from devtools.local_serve import free_port
from scale_helpers import final_digest, start_toolkit, write_config
from toolkit_helpers import TINY, make_opt_ml

HOSTS = ["algo-1", "algo-2"]


def _host_tree(base, channel, host: str, distribution: str):
    base = make_opt_ml(base, {"training": channel}, {**TINY, "checkpoint-steps": "0"})
    write_config(base, "resourceconfig.json", {
        "current_host": host, "hosts": HOSTS,
        # the interface gloo binds to: loopback here, eth0 on SageMaker
        "network_interface_name": "lo"})
    write_config(base, "inputdataconfig.json", {"training": {
        "TrainingInputMode": "File", "S3DistributionType": distribution, "RecordWrapperType": "None"}})
    return base


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


@pytest.mark.slow
def test_two_hosts_average_gradients_and_only_rank_0_writes(tmp_path, tiny_bins, other_tiny_bins):
    # ShardedByS3Key: each host received different images. (FullyReplicated, the same images
    # which the sampler splits by rank, is the one-host two-process run of test_processes.py:
    # the sampler sees ranks, not hosts, so one run of each kind covers both.)
    distribution = "ShardedByS3Key"
    bases = [_host_tree(tmp_path / "algo-1", tiny_bins, "algo-1", distribution),
             _host_tree(tmp_path / "algo-2", other_tiny_bins, "algo-2", distribution)]
    # hosts[0] stays the master in the contract; MASTER_ADDR points its name at loopback
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    runs = [start_toolkit(b, rendezvous) for b in bases]
    logs = [r.communicate(timeout=600)[0] for r in runs]
    for r, log in zip(runs, logs):
        assert r.returncode == 0, log[-3000:]

    assert "joining tcp://127.0.0.1" in logs[0] and "as rank 0 of 2" in logs[0]
    assert "as rank 1 of 2" in logs[1]
    # different data on each host, yet the same weights: the gradients were averaged
    assert final_digest(logs[0]) == final_digest(logs[1])

    assert {"model.pth", "model.onnx", "model.json"} <= {p.name for p in (bases[0] / "model").iterdir()}
    assert _files(bases[1] / "model") == []
    report = json.loads((bases[0] / "output" / "data" / "evaluation.json").read_text())
    # the test split gathered from both ranks: each host's own 10
    assert report["test"]["n"] == 20
    assert not (bases[1] / "output" / "data" / "evaluation.json").exists()
    assert list((bases[0] / "checkpoints").glob("checkpoint-*.pt"))
    assert _files(bases[1] / "checkpoints") == []
    # metric lines once, from rank 0, with every host's validation images counted
    assert re.findall(r"#metrics epoch=2 split=validation", logs[0])
    assert "#metrics" not in logs[1]
