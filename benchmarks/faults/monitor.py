"""The monitor's rows: capture files that cannot be read (S3 failing after botocore's retries, a
body cut short, a line cut short) and the monitor process SIGKILLed while it writes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.faults import Row
from benchmarks.faults.inject import S3Faults
from benchmarks.faults.stack import SETTINGS, Stack
from bincounter.modelcard import ModelCard
from bincounter.monitoring import capture
from bincounter.serving.handler import Instance, ModelHandler
from bincounter.training.outputs import write_reference
from orchestrate.core.store import split_s3
from orchestrate.monitor.schedule import NAMESPACE

CAPTURES = "s3://models/exp1/captures/faults-ep/AllTraffic/2026/12/07/01/"
UNTIL = "2026-12-07T03:00"
ROOT = Path(__file__).resolve().parents[2]


def with_reference(stack: Stack) -> list[str]:
    """The stack's model given a monitor reference (its answers on the synthetic bins, as training
    writes it); its answers as capture lines, in the order of the bins."""
    handler = ModelHandler.load(stack.model_dir)
    photos = sorted((stack.work / "bins" / "images").glob("*.jpg"))
    answers = handler.handle([Instance(p.read_bytes()) for p in photos])
    labels = np.array([json.loads((p.parent.parent / "metadata" / f"{p.stem}.json").read_text())["EXPECTED_QUANTITY"]
                       for p in photos])
    probs = np.array([[a["probabilities"][str(c)] for c in handler.classes] for a in answers])
    card = ModelCard.read(stack.model_dir)
    monitor_section = write_reference(stack.model_dir, probs, labels, handler.classes, card.verification, False)
    dataclasses.replace(card, monitor=monitor_section).write(stack.model_dir)
    return [capture.line(json.dumps(a).encode(), "application/json") for a in answers]


def put_captures(stack: Stack, lines: list[str], files: int) -> list[str]:
    """``files`` capture files of the lines in turn; the last file's last line cut short. Their keys."""
    s3, (bucket, prefix) = stack.session.client("s3"), split_s3(CAPTURES)
    keys = []
    for f in range(files):
        chunk = lines[f::files]
        text = "\n".join(chunk) + "\n"
        if f == files - 1:
            text = text.rstrip("\n")[: -len(chunk[-1]) // 2] + "\n"
        keys.append(f"{prefix}{f:02d}.jsonl")
        s3.put_object(Bucket=bucket, Key=keys[-1], Body=text.encode())
    return keys


def monitor(stack: Stack, out: Path, *extra: str) -> int:
    return stack.orchestrate("--set", "deploy.endpoint_name=faults-ep", "monitor", "--captures", CAPTURES,
                             "--model-data", str(stack.model_dir), "--until", UNTIL, "--out", str(out), *extra)


def metric_count(stack: Stack, name: str) -> int:
    cw = stack.session.client("cloudwatch")
    return sum(m["MetricName"] == name for m in cw.list_metrics(Namespace=NAMESPACE)["Metrics"])


def unreadable_captures(stack: Stack, files: int = 6) -> list[Row]:
    lines = with_reference(stack)
    keys = put_captures(stack, lines, files)
    s3 = stack.session.client("s3")
    bodies = {k: s3.get_object(Bucket="models", Key=k)["Body"].read() for k in keys}
    broken, cut = keys[1], keys[3]
    rule = lambda key, attempt: "InternalError" if key == broken else "truncate" if key == cut else None  # noqa: E731
    rows = []
    for min_answers, expect in ((20, "report written"), (len(lines), "refused")):
        row = Row("monitor", f"capture files unreadable, {expect} ({min_answers} answers needed)",
                  "before-send: one file InternalError always, one body cut short; one line cut short",
                  "each named and counted; " + ("the report written from the rest" if expect == "report written"
                                                else "refused with the reason, no Drift/Reports metric"))
        out = stack.work / f"monitor-{min_answers}"
        before = metric_count(stack, "Reports")
        faults = S3Faults(rule, bodies=bodies).on(stack.session)
        try:
            code = monitor(stack, out, "--set", f"monitor.min_answers={min_answers}", "--publish-metrics")
        finally:
            faults.off(stack.session)
        doc = json.loads((out / "monitor.json").read_text())
        w = doc["window"]
        named = sorted(Path(where).name for where, _ in w["unread_files"])
        reports = metric_count(stack, "Reports") - before
        row.did = (f"exit {code}; files not read: {named}; lines not read: {len(w['bad'])}; "
                   f"{doc['comparison']['n']} answers; Reports metrics published: {reports}")
        wanted = {Path(broken).name, Path(cut).name}
        judged = bool(doc["comparison"]["tests"])
        row.passed = (set(named) == wanted and len(w["bad"]) == 1
                      and (code == 0 and judged and reports >= 0 if expect == "report written"
                           else code == 3 and not judged and reports == 0))
        rows.append(row)
    return rows


def killed_while_writing(stack: Stack, kills: int = 4) -> Row:
    """``orchestrate monitor`` as its own process over a local copy of many capture lines,
    SIGKILLed at points spread over an undisturbed run; after each kill the report is whole or
    absent, and the run again writes the undisturbed report."""
    row = Row("monitor", "the monitor process SIGKILLed while it works", f"SIGKILL at {kills} points over the run",
              "never half a report; the next run writes the undisturbed report")
    lines = with_reference(stack) * max(1, 12_000 // stack.bins)
    folder = stack.work / "local-captures" / "faults-ep" / "AllTraffic" / "2026" / "12" / "07" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "orchestrate", *SETTINGS, "monitor", "--captures",
           str(stack.work / "local-captures"), "--model-data", str(stack.model_dir), "--until", UNTIL, "--out"]
    clean = stack.work / "monitor-clean"
    t0 = time.monotonic()
    subprocess.run([*cmd, str(clean)], check=True, capture_output=True, cwd=ROOT)
    whole = time.monotonic() - t0
    want = json.loads((clean / "monitor.json").read_text())
    seen, bad, recover = [], 0, []
    for k in range(kills):
        out = stack.work / f"monitor-kill-{k}"
        proc = subprocess.Popen([*cmd, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(whole * (0.6 + 0.38 * k / max(kills - 1, 1)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = "none"
        if (out / "monitor.json").exists():
            try:
                state = "whole" if json.loads((out / "monitor.json").read_text()) == want else "DIFFERENT"
            except ValueError:
                state = "PARTIAL"
        seen.append(state)
        bad += state in ("PARTIAL", "DIFFERENT")
        t1 = time.monotonic()
        subprocess.run([*cmd, str(out)], check=True, capture_output=True, cwd=ROOT)
        recover.append(time.monotonic() - t1)
        bad += json.loads((out / "monitor.json").read_text()) != want
    row.did = (f"{len(lines)} capture lines, undisturbed run {whole:.1f} s; report after each kill: "
               f"{', '.join(seen)}; every next run wrote the undisturbed report: {bad == 0}")
    row.recover_s = max(recover)
    row.passed = bad == 0
    return row
