"""The review loop's rows: Label Studio SIGKILLed in the middle of `review export` and of `review
import`, restarted on the same database, and the command run again.

The kill is timed by a forwarding proxy in front of Label Studio (the network seam, as a load
balancer sees a backend die): when the chosen request arrives, the proxy either kills Label
Studio before passing it on ("before"), or passes it on, waits for Label Studio's answer, then
kills it and drops the answer ("after": the work was done, the caller is told it failed).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from benchmarks.faults import Row
from bincounter.synth import generate
from devtools.label_studio import from_template, start_label_studio
from devtools.local_http import LocalServer, ReplyHandler
from devtools.local_serve import free_port
from orchestrate import cli
from orchestrate.audit.join import Row as AuditRow
from orchestrate.audit.report import write_csv
from orchestrate.review.labelstudio import LabelStudio
from orchestrate.review.tasks import FROM_NAME, TO_NAME


class CuttingProxy(LocalServer):
    """Forwards every request to ``upstream``; on the first whose method and path start match
    ``cut``, calls ``on_cut`` before or after forwarding it and answers 502."""

    def __init__(self, upstream: str):
        self.upstream, self.cut, self.when, self.on_cut, self.fired = upstream, None, "", None, False
        super().__init__(("127.0.0.1", 0), _Proxy)


class _Proxy(ReplyHandler):
    server: CuttingProxy

    def _any(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hit = (srv.cut and not srv.fired and self.command == srv.cut[0]
               and self.path.split("?")[0].startswith(srv.cut[1]))
        if hit and srv.when == "before":
            srv.fired = True
            srv.on_cut()
            return self._send(502, b'{"detail": "bad gateway"}', {"Content-Type": "application/json"})
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(srv.upstream + self.path, data=body or None, method=self.command,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as reply:
                status, data, ctype = reply.status, reply.read(), reply.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        except OSError:
            return self._send(502, b'{"detail": "bad gateway"}', {"Content-Type": "application/json"})
        if hit:  # "after": Label Studio did the work; its answer never arrives
            srv.fired = True
            srv.on_cut()
            return self._send(502, b'{"detail": "bad gateway"}', {"Content-Type": "application/json"})
        self._send(status, data, {"Content-Type": ctype})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any


class LabelStudioUnderTest:
    """A real Label Studio from the template database, restartable on the same data and port."""

    def __init__(self, work: Path):
        self.work, self.port = work, free_port()
        self.token = from_template(work / "data")
        if not self.token:
            raise RuntimeError("no Label Studio template: run `make labelstudio`")
        self.proc = None
        self.proxy = CuttingProxy(f"http://127.0.0.1:{self.port}").start()

    def start(self) -> float:
        t0 = time.monotonic()
        self.proc = start_label_studio(self.work / "data", self.port, self.token, self.work,
                                       self.work / "labelstudio.log")
        return time.monotonic() - t0

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proxy.stop()

    def cli(self, *args: str, project: str) -> tuple[int, str]:
        os.environ["LABEL_STUDIO_API_KEY"] = self.token
        cfg = self.work / "orchestrate.toml"
        cfg.write_text('[aws]\nstack = "faults"\n')
        out = StringIO()
        with redirect_stdout(out), open(self.work / "orchestrate.log", "a") as log, redirect_stderr(log):
            code = cli.main(["--config", str(cfg), "--set", f"review.url={self.proxy.url}", "--set",
                             f"review.local_root={self.work}", "--set", f"review.project={project}", *args])
        return code, out.getvalue()

    def client(self) -> LabelStudio:
        return LabelStudio(f"http://127.0.0.1:{self.port}", self.token)


def audit_folder(work: Path, n: int) -> tuple[Path, dict[str, int]]:
    """An audit.csv of ``n`` bins to review, their photos under Label Studio's local root."""
    bins = generate(work / "photos", n=n, seed=9, size=64)
    truth = {p.stem: json.loads(p.read_text())["EXPECTED_QUANTITY"] for p in sorted((bins / "metadata").glob("*.json"))}
    folder = work / "audit"
    folder.mkdir(exist_ok=True)
    rows = [AuditRow(i, c, c, 0.5, confidence=0.5, verdict="review") for i, c in truth.items()]
    write_csv(rows, folder / "audit.csv", {i: str(bins / "images" / f"{i}.jpg") for i in truth})
    return folder, truth


def export_killed(ls: LabelStudioUnderTest, folder: Path, n: int, when: str) -> Row:
    project = f"export-{when}"
    row = Row("review", f"Label Studio killed mid-export ({when} it takes the tasks)",
              f"proxy: SIGKILL Label Studio {when} forwarding POST .../import", "export fails in one line; "
              "after a restart the re-run leaves every bin exactly once in the project")
    # POST /api/projects/<id>/import: the project itself is made by POST /api/projects (no slash)
    ls.proxy.cut, ls.proxy.when, ls.proxy.fired, ls.proxy.on_cut = ("POST", "/api/projects/"), when, False, ls.kill
    code, _ = ls.cli("review", "export", "--audit", str(folder), project=project)
    ls.proxy.cut = None
    restart = ls.start()
    t1 = time.monotonic()
    code2, said = ls.cli("review", "export", "--audit", str(folder), project=project)
    c = ls.client()
    ids = [t["data"]["bin_id"] for t in c.tasks(c.find(project))]
    once = len(ids) == len(set(ids)) == n
    row.did = (f"export exit {code} (Label Studio gone); restart {restart:.1f} s; re-run exit {code2}: "
               f"{said.strip().splitlines()[-1].split(': ', 1)[-1][:90]}; {len(ids)} tasks, {len(set(ids))} bins")
    row.recover_s = restart + time.monotonic() - t1
    row.passed = code == 1 and code2 == 0 and once
    return row


def answer_all(ls: LabelStudioUnderTest, project: str, truth: dict[str, int]) -> None:
    c = ls.client()
    for t in c.tasks(c.find(project)):
        c.annotate(t["id"], [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                              "value": {"choices": [str(truth[t["data"]["bin_id"]])]}}])


def import_killed(ls: LabelStudioUnderTest, folder: Path, truth: dict[str, int]) -> Row:
    project = "import"
    row = Row("review", "Label Studio killed mid-import", "proxy: SIGKILL Label Studio after the export call, "
              "before the users call", "nothing written; after a restart the re-run writes the undisturbed "
              "labels.jsonl")
    assert ls.cli("review", "export", "--audit", str(folder), project=project)[0] == 0
    answer_all(ls, project, truth)
    clean, faulty = ls.work / "import-clean", ls.work / "import-faulty"
    assert ls.cli("review", "import", "--out", str(clean), "--no-upload", project=project)[0] == 0
    ls.proxy.cut, ls.proxy.when, ls.proxy.fired, ls.proxy.on_cut = ("GET", "/api/users"), "before", False, ls.kill
    code, _ = ls.cli("review", "import", "--out", str(faulty), "--no-upload", project=project)
    ls.proxy.cut = None
    nothing = not faulty.exists() or not any(faulty.iterdir())
    restart = ls.start()
    t1 = time.monotonic()
    code2, _ = ls.cli("review", "import", "--out", str(faulty), "--no-upload", project=project)
    same = (faulty / "labels.jsonl").read_bytes() == (clean / "labels.jsonl").read_bytes()
    row.did = (f"import exit {code}, nothing written: {nothing}; restart {restart:.1f} s; re-run exit {code2}, "
               f"labels.jsonl identical to the undisturbed import: {same} ({len(truth)} bins)")
    row.recover_s = restart + time.monotonic() - t1
    row.passed = code == 1 and nothing and code2 == 0 and same
    return row


def rows(work: Path, n: int = 20) -> list[Row]:
    ls = LabelStudioUnderTest(work)
    try:
        ls.start()
        folder, truth = audit_folder(work, n)
        out = [export_killed(ls, folder, n, "before"), export_killed(ls, folder, n, "after"),
               import_killed(ls, folder, truth)]
    finally:
        ls.stop()
    return out
