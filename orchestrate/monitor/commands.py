"""``orchestrate monitor``: a window of the endpoint's data capture against the model's
reference -> monitor.json / .md / .html and the line ``drift: yes|no``.

Reads captures from an S3 prefix or a folder (the runtime emulator's ``--capture-dir``,
compose's ``captures`` volume). Exit 0 whenever the window could be read, drift or not;
``--fail-on-drift`` exits 3 on drift, for pipelines."""

from __future__ import annotations

import logging
from pathlib import Path

from bincounter.monitoring import drift, report
from orchestrate.core import aws
from orchestrate.core.config import Config
from orchestrate.monitor import window

log = logging.getLogger(__name__)
DRIFT_EXIT = 3


def cmd_monitor(a, cfg: Config, sess) -> int:
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    span = window.Span(window.parse_time(a.since or "", "--since"), window.parse_time(a.until or "", "--until"))
    card, reference = window.load_model(a.model_data, clients)
    read, files = window.read(a.captures, span, clients)
    comparison = drift.compare(reference, read.answers, alpha=cfg.monitor.alpha, min_answers=cfg.monitor.min_answers)
    doc = {"window": {"captures": a.captures, "since": a.since or "", "until": a.until or "", "files": files,
                      "lines": read.lines, "errors": read.errors, "bad": read.bad},
           "model": a.model_data, "reference": report.reference_summary(reference), "comparison": comparison}
    paths = report.write(doc, Path(a.out))
    print(report.verdict_line(doc))
    print(f"report: {paths['md']} ({comparison['n']} answers from {files} files; {len(read.bad)} lines not read)")
    return DRIFT_EXIT if a.fail_on_drift and comparison["drift"] else 0
