"""Training's rows: the toolkit's ``train`` SIGKILLed (no SIGTERM, so no checkpoint of its own)
mid-epoch and in the middle of writing a checkpoint, then started again on the same /opt/ml tree:
it must resume from the last complete checkpoint and end with the uninterrupted run's weights."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from benchmarks.faults import Row
from bincounter.optml import build_tree
from bincounter.synth import generate
from devtools.local_toolkit import TRAIN, install_code, run_train, toolkit_env

# 80 train photos at 32 px in 10 steps of 8, two epochs, a checkpoint every 3 steps
HPS = {"arch": "resnet18", "pretrained": "false", "max-false-match": "0.2", "max-false-mismatch": "0.2",
       "image-size": "32", "batch-size": "8", "epochs": "2", "lr": "0.01", "log-interval": "1",
       "profile-steps": "0", "num-workers": "0", "checkpoint-steps": "3", "quantize": "false", "seed": "3"}


def tree(base: Path, bins: Path) -> Path:
    return install_code(build_tree(base, {"training": bins}, HPS))


def digest(log: str) -> str:
    found = re.findall(r"final weights sha256 (\w+)", log)
    return found[-1] if found else ""


def _kill_when(base: Path, ready) -> tuple[str, float]:
    """Start ``train`` in its own process group; SIGKILL the group the moment ``ready(log)`` holds."""
    log = base / "killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([TRAIN], env=toolkit_env(base), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(log.read_text(errors="replace")):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    proc.wait()
    return log.read_text(errors="replace"), time.monotonic()


def _tmp_after_first_checkpoint(base: Path):
    def ready(_log: str) -> bool:
        names = [p.name for p in (base / "checkpoints").glob("*")]
        return any(n.endswith(".pt") for n in names) and any(n.endswith(".tmp") for n in names)
    return ready


def killed(work: Path, bins: Path, straight: str, where: str) -> Row:
    base = tree(work / f"kill-{where}", bins)
    if where == "mid-epoch":
        ready = lambda log: "epoch 1 step 5/10" in log  # noqa: E731  (after step 3's checkpoint)
        injected = "SIGKILL to the training process group at epoch 1 step 5 of 10"
    else:
        ready = _tmp_after_first_checkpoint(base)
        injected = "SIGKILL the moment a checkpoint's temporary file exists (one complete before it)"
    _, killed_at = _kill_when(base, ready)
    left = sorted(p.name for p in (base / "checkpoints").glob("*"))
    resumed = run_train(base)
    found = re.search(r"resumed from \S+ at epoch (\d+) step (\d+)/(\d+)", resumed.stdout + resumed.stderr)
    same = digest(resumed.stdout + resumed.stderr) == straight != ""
    row = Row("training", f"SIGKILL {where}, then restart", injected,
              "resumes from the last complete checkpoint to the uninterrupted run's weights, bit for bit")
    row.did = (f"checkpoints left: {left}; restart exit {resumed.returncode}, "
               f"{'resumed at epoch %s step %s/%s' % found.groups() if found else 'did not resume'}; "
               f"final weights equal the uninterrupted run's: {same}")
    row.recover_s = time.monotonic() - killed_at
    row.passed = resumed.returncode == 0 and found is not None and same and (
        where == "mid-epoch" or any(n.endswith(".tmp") for n in left))
    return row


def rows(work: Path) -> list[Row]:
    bins = generate(work / "bins", n=100, seed=2, size=32)
    straight = run_train(tree(work / "straight", bins))
    want = digest(straight.stdout + straight.stderr)
    if straight.returncode != 0 or not want:
        raise RuntimeError(f"the uninterrupted run failed: {(straight.stdout + straight.stderr)[-2000:]}")
    return [killed(work, bins, want, "mid-epoch"), killed(work, bins, want, "mid-checkpoint-write")]
