"""Where the time goes: system samples, step split, profiler summary in the report."""

from __future__ import annotations

import json
import re
import time

import pytest
import torch

from bincounter.training.profiling import StepTimer, SystemMonitor


def test_system_monitor_samples_on_its_interval_into_json_lines(tmp_path):
    path = tmp_path / "system_metrics.jsonl"
    with SystemMonitor(path, interval=0.05) as monitor:
        time.sleep(0.6)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert 5 <= len(lines) == len(monitor.samples)
    assert all(0 <= sum(s["cpu_percent"]) / len(s["cpu_percent"]) <= 100 for s in lines)
    assert all(s["rss_mb"] > 0 for s in lines)
    gaps = [b["t"] - a["t"] for a, b in zip(lines, lines[1:])]
    assert min(gaps) >= 0.04
    assert monitor.summary()["samples"] == len(lines)


def test_step_timer_splits_waiting_for_data_from_computing():
    timer = StepTimer()
    for _ in range(3):
        timer.restart()
        time.sleep(0.03)          # the loader
        timer.batch_arrived()
        time.sleep(0.01)          # the step
        timer.step_done(torch.device("cpu"))
    s = timer.summary()
    assert s["steps"] == 3 and 0.6 < s["data_wait_share"] < 0.9, s


@pytest.mark.slow
def test_a_run_reports_data_wait_share_top_ops_and_system_samples(instrumented_run):
    base, proc = instrumented_run  # profile-steps 3, 2 epochs of 10 steps
    out = base / "output" / "data"
    share = re.search(r"data-wait share of step time: ([\d.]+) %", proc.stdout)
    assert share and 0 <= float(share.group(1)) <= 100
    profile = json.loads((out / "evaluation.json").read_text())["profile"]
    assert profile["step_timing"]["steps"] == 20
    assert profile["top_ops"] and all(0 < op["share"] <= 1 for op in profile["top_ops"])
    assert any("conv" in op["op"] for op in profile["top_ops"])
    assert profile["system"]["samples"] >= 1
    assert (out / "profile_top_ops.txt").read_text().count("aten::") >= 5
    assert json.loads((out / "profile_trace.json").read_text())["traceEvents"]
    assert (out / "system_metrics.jsonl").read_text().strip()
    md = (out / "evaluation.md").read_text()
    assert "Data-wait share of step time" in md and "| op | calls |" in md
