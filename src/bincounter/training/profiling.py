"""Where the time goes: a system monitor thread, data-wait vs compute per step,
and ``torch.profiler`` on a few steps, summarised for the report."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import psutil
import torch

log = logging.getLogger(__name__)


class SystemMonitor:
    """CPU, memory (and GPU memory when there is one) every ``interval`` seconds,
    appended to a JSON-lines file; a summary for the report."""

    def __init__(self, path: Path, interval: float = 0.5):
        self.path, self.interval = path, interval
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="system-monitor", daemon=True)

    def __enter__(self) -> "SystemMonitor":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        psutil.cpu_percent(percpu=True)  # the first call only sets the reference point
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        proc, t0 = psutil.Process(), time.monotonic()
        with open(self.path, "w", encoding="utf-8") as out:
            while not self._stop.wait(self.interval):
                vm = psutil.virtual_memory()
                sample = {"t": round(time.monotonic() - t0, 3),
                          "cpu_percent": psutil.cpu_percent(percpu=True),
                          "mem_used_mb": round((vm.total - vm.available) / 2**20, 1),
                          "rss_mb": round(proc.memory_info().rss / 2**20, 1)}
                if torch.cuda.is_available():
                    sample["gpu_mem_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
                    try:
                        sample["gpu_util_percent"] = torch.cuda.utilization()
                    except Exception:  # needs pynvml; memory alone still says something
                        pass
                self.samples.append(sample)
                out.write(json.dumps(sample) + "\n")
                out.flush()

    def summary(self) -> dict:
        if not self.samples:
            return {"samples": 0}
        cpu = [sum(s["cpu_percent"]) / len(s["cpu_percent"]) for s in self.samples]
        out = {"samples": len(self.samples), "interval_s": self.interval,
               "cpu_percent_mean": round(sum(cpu) / len(cpu), 1), "cpu_percent_max": round(max(cpu), 1),
               "rss_mb_max": max(s["rss_mb"] for s in self.samples),
               "mem_used_mb_max": max(s["mem_used_mb"] for s in self.samples)}
        if "gpu_mem_mb" in self.samples[0]:
            out["gpu_mem_mb_max"] = max(s["gpu_mem_mb"] for s in self.samples)
        return out


class StepTimer:
    """Splits each train step into waiting for the batch and computing on it."""

    def __init__(self) -> None:
        self.data_wait = 0.0
        self.compute = 0.0
        self.steps = 0
        self._mark = time.perf_counter()

    def batch_arrived(self) -> None:
        now = time.perf_counter()
        self.data_wait += now - self._mark
        self._mark = now

    def step_done(self, device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()  # else the GPU's work would count as data wait
        now = time.perf_counter()
        self.compute += now - self._mark
        self._mark = now
        self.steps += 1

    def restart(self) -> None:
        self._mark = time.perf_counter()

    def summary(self) -> dict:
        total = self.data_wait + self.compute
        return {"steps": self.steps, "data_wait_s": round(self.data_wait, 3),
                "compute_s": round(self.compute, 3),
                "data_wait_share": round(self.data_wait / total, 4) if total else 0.0}


class StepProfiler:
    """``torch.profiler`` over ``steps`` train steps after one warm-up step;
    writes the top-ops table and a Chrome trace to ``out_dir``."""

    def __init__(self, out_dir: Path, steps: int, device: torch.device):
        from torch.profiler import ProfilerActivity, profile, schedule

        self.out_dir, self.steps, self.done = out_dir, steps, steps <= 0
        self.top_ops: list[dict] = []
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        self._prof = None if self.done else profile(
            activities=activities, schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
            on_trace_ready=self._ready, record_shapes=False)
        self._started = False

    def step(self) -> None:
        if self.done:
            return
        if not self._started:
            self._prof.__enter__()
            self._started = True
        self._prof.step()

    def close(self) -> None:
        if self._started and not self.done:
            self._prof.__exit__(None, None, None)
            self.done = True

    def _ready(self, prof) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        averages = prof.key_averages()
        table = averages.table(sort_by="self_cpu_time_total", row_limit=15)
        (self.out_dir / "profile_top_ops.txt").write_text(table, encoding="utf-8")
        prof.export_chrome_trace(str(self.out_dir / "profile_trace.json"))
        total = sum(e.self_cpu_time_total for e in averages) or 1.0
        ranked = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
        self.top_ops = [{"op": e.key, "calls": e.count, "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2),
                         "share": round(e.self_cpu_time_total / total, 4)} for e in ranked]
        self.done = True
        log.info("profiled %d steps: top ops by self CPU time: %s", self.steps,
                 ", ".join(f"{o['op']} {o['share'] * 100:.1f}%" for o in self.top_ops[:5]))
