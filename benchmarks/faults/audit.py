"""The audit's rows: S3 failing while the join reads the transform outputs (the cloud path on
moto) or the metadata (``--local``), and the audit process SIGKILLed, then run again."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.faults import Row
from benchmarks.faults.inject import S3Faults
from benchmarks.faults.stack import METADATA, PHOTOS, SETTINGS, Stack
from devtools.local_serve import start_serve, stop
from orchestrate.audit.join import UNREAD


def rows_of(folder: Path) -> list[dict]:
    return list(csv.DictReader((folder / "audit.csv").open()))


def _number(key: str) -> int:
    """The bin number in an object's name (``.../00030.jpg.out`` -> 30)."""
    return int("".join(ch for ch in Path(key).name if ch.isdigit()) or 0)


def _never(key: str) -> bool:
    """Every tenth object fails every attempt (the rule below)."""
    return _number(key) % 10 == 0


def _broken(keys, suffix: str) -> set[str]:
    """The bins whose ``suffix`` object the rule below never lets through."""
    return {Path(k).name.split(".")[0] for k in keys if k.endswith(suffix) and _never(k)}


def _flaky_and_broken(suffix: str):
    """Every third object of ``suffix`` fails twice with SlowDown, then answers; every tenth fails
    every attempt with InternalError (botocore's standard mode gives up after its 10 attempts)."""
    def rule(key: str, attempt: int) -> str | None:
        if not key.endswith(suffix):
            return None
        if _never(key):
            return "InternalError"
        return "SlowDown" if _number(key) % 3 == 0 and attempt <= 2 else None
    return rule


def _compare(clean: list[dict], faulty: list[dict], broken: set[str], reasons: tuple[str, ...]) -> tuple[bool, str]:
    """Each bin once; every never-readable bin named (an error row giving the S3 error); every other
    row as the undisturbed audit has it. Some bins that failed only twice may be named too: the
    client's retries share botocore's retry quota, which a burst of failures drains."""
    ids = [r["bin_id"] for r in faulty]
    once = len(ids) == len(set(ids)) and set(ids) == {r["bin_id"] for r in clean}
    by = {r["bin_id"]: r for r in clean}
    named = {r["bin_id"] for r in faulty if any(x in r["error"] for x in reasons)}
    same = all(r == by[r["bin_id"]] for r in faulty if r["bin_id"] not in named)
    return once and broken <= named and same, (
        f"{len(faulty)} rows, each bin once: {once}; {len(named)} named as unread ({len(broken)} never readable, "
        f"{len(named) - len(broken & named)} more whose retries ran out); every other row as undisturbed: {same}")


def s3_errors_cloud(stack: Stack) -> Row:
    row = Row("audit", "S3 errors while the join reads the outputs (cloud, moto)",
              "before-send: 1 in 3 outputs SlowDown twice, 1 in 10 InternalError always",
              "each bin once; unreadable ones named as error rows; --job again completes it, nothing twice")
    clean, faulty, again = (stack.work / n for n in ("audit-clean", "audit-faulty", "audit-again"))
    assert stack.orchestrate("audit", "--poll-seconds", "0", "--job", stack.job, "--out", str(clean)) == 0
    faults = S3Faults(_flaky_and_broken(".out")).on(stack.session)
    t0 = time.monotonic()
    try:
        code = stack.orchestrate("audit", "--poll-seconds", "0", "--job", stack.job, "--out", str(faulty))
    finally:
        faults.off(stack.session)
    seconds = time.monotonic() - t0
    broken = _broken(faults.attempts, ".out")
    ok, what = _compare(rows_of(clean), rows_of(faulty), broken, (UNREAD,))
    t1 = time.monotonic()
    code2 = stack.orchestrate("audit", "--poll-seconds", "0", "--job", stack.job, "--out", str(again))
    complete = (again / "audit.csv").read_bytes() == (clean / "audit.csv").read_bytes()
    row.did = (f"exit {code}; {what}; injected {faults.injected}; join again: exit {code2}, audit.csv identical "
               f"to an undisturbed run: {complete}")
    row.recover_s = time.monotonic() - t1
    row.passed = code == 0 and ok and code2 == 0 and complete
    row.facts = {"injected": faults.injected, "faulty_s": seconds}
    return row


def s3_errors_local(stack: Stack) -> Row:
    row = Row("audit", "S3 errors while the join reads the metadata (--local)",
              "before-send: 1 in 3 metadata objects SlowDown twice, 1 in 10 InternalError always",
              "each bin once; unreadable ones named; the same command again gives the undisturbed audit.csv")
    clean, faulty, again = (stack.work / n for n in ("local-clean", "local-faulty", "local-again"))
    with open(stack.work / "serve-local.log", "wb") as log:
        proc, url = start_serve(stack.model_dir, log, SAGEMAKER_BATCH="true")
        try:
            def audit(out: Path) -> int:
                return stack.orchestrate("audit", "--local", "--endpoint", url, "--images", PHOTOS, "--metadata",
                                         METADATA, "--model-data", str(stack.model_dir), "--out", str(out))
            assert audit(clean) == 0
            faults = S3Faults(_flaky_and_broken(".json")).on(stack.session)
            try:
                code = audit(faulty)
            finally:
                faults.off(stack.session)
            t1 = time.monotonic()
            code2 = audit(again)
        finally:
            stop(proc)
    broken = _broken(faults.attempts, ".json")
    ok, what = _compare(rows_of(clean), rows_of(faulty), broken, ("InternalError", "SlowDown"))
    complete = (again / "audit.csv").read_bytes() == (clean / "audit.csv").read_bytes()
    row.did = f"exit {code}; {what}; injected {faults.injected}; again: exit {code2}, identical: {complete}"
    row.recover_s = time.monotonic() - t1
    row.passed = code == 0 and ok and code2 == 0 and complete
    return row


def killed_mid_join(stack: Stack, kills: int = 4) -> Row:
    """``orchestrate audit --job`` as its own process (one join worker, so the join takes a while),
    SIGKILLed at points spread over an undisturbed run's duration, then run again."""
    row = Row("audit", "the audit process SIGKILLed, then run again", f"SIGKILL at {kills} points over the run",
              "never a partial audit.csv; the re-run's audit.csv equals an undisturbed run's")
    cmd = [sys.executable, "-m", "orchestrate", *SETTINGS, "--set", "data.workers=1", "audit", "--poll-seconds",
           "0", "--job", stack.job, "--out"]
    clean = stack.work / "kill-clean"
    t0 = time.monotonic()
    subprocess.run([*cmd, str(clean)], check=True, capture_output=True, cwd=Path(__file__).resolve().parents[2])
    whole = time.monotonic() - t0
    want = (clean / "audit.csv").read_bytes()
    seen, partial, recover = [], 0, []
    for k in range(kills):
        out = stack.work / f"kill-{k}"
        proc = subprocess.Popen([*cmd, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=Path(__file__).resolve().parents[2])
        time.sleep(whole * (0.55 + 0.4 * k / max(kills - 1, 1)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        there = (out / "audit.csv").read_bytes() if (out / "audit.csv").exists() else None
        seen.append("none" if there is None else "whole" if there == want else "PARTIAL")
        partial += there is not None and there != want
        t1 = time.monotonic()
        subprocess.run([*cmd, str(out)], check=True, capture_output=True, cwd=Path(__file__).resolve().parents[2])
        recover.append(time.monotonic() - t1)
        partial += (out / "audit.csv").read_bytes() != want
    row.did = (f"undisturbed run {whole:.1f} s; audit.csv after each kill: {', '.join(seen)}; every re-run "
               f"identical to the undisturbed one: {partial == 0}")
    row.recover_s = max(recover)
    row.passed = partial == 0
    return row
