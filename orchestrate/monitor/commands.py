"""``orchestrate monitor``: a window of the endpoint's data capture against the model's
reference -> monitor.json / .md / .html and the line ``drift: yes|no``.

Reads captures from an S3 prefix or a folder (the runtime emulator's ``--capture-dir``,
compose's ``captures`` volume). Exit 0 whenever the window could be read, drift or not;
``--fail-on-drift`` exits 3 on drift, for pipelines. ``--publish-metrics`` puts the
results in CloudWatch (what the scheduled run does); ``--schedule`` sets that run up
(``schedule``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bincounter.monitoring import drift, report
from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.images import image_uri
from orchestrate.endpoint.deploy import capture_uri, serving_model_data
from orchestrate.monitor import schedule, window

log = logging.getLogger(__name__)
DRIFT_EXIT = 3


def cmd_monitor(a, cfg: Config, sess) -> int:
    if a.schedule:
        return _schedule(a, cfg, sess)
    if not a.captures or not a.model_data:
        raise ConfigError("--captures and --model-data say what to report on (or --schedule EXPR to run it on a timer)")
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    until = window.parse_time(a.until or "", "--until")
    since = window.parse_time(a.since or "", "--since")
    if a.window_hours:
        if since:
            raise ConfigError("give --since or --window-hours, not both")
        since = (until or datetime.now(timezone.utc)) - timedelta(hours=a.window_hours)
    span = window.Span(since, until)
    card, reference = window.load_model(a.model_data, clients)
    read, files = window.read(a.captures, span, clients)
    comparison = drift.compare(reference, read.answers, alpha=cfg.monitor.alpha, min_answers=cfg.monitor.min_answers)
    bounds = {k: v.isoformat() if v else "" for k, v in (("since", since), ("until", until))}
    doc = {"window": {"captures": a.captures, **bounds, "files": files, "lines": read.lines, "errors": read.errors,
                      "bad": read.bad},
           "model": a.model_data, "reference": report.reference_summary(reference), "comparison": comparison}
    paths = report.write(doc, Path(a.out))
    print(report.verdict_line(doc))
    print(f"report: {paths['md']} ({comparison['n']} answers from {files} files; {len(read.bad)} lines not read)")
    if a.publish_metrics:
        schedule.publish(aws.client(sess, "cloudwatch"), cfg.deploy.endpoint_name, comparison)
    return DRIFT_EXIT if a.fail_on_drift and comparison["drift"] else 0


def _schedule(a, cfg: Config, sess) -> int:
    """The report every EXPR on a Processing job; captures default to the endpoint's, the model to
    the one it serves now (schedule again after a deploy of another model)."""
    endpoint = cfg.deploy.endpoint_name
    captures = a.captures or f"{capture_uri(cfg)}/{endpoint}/"
    model_data = a.model_data or serving_model_data(aws.client(sess, "sagemaker"), endpoint)
    if not captures.startswith("s3://") or not model_data.startswith("s3://"):
        raise ConfigError("--schedule runs in the cloud: --captures and --model-data must be s3:// locations")
    done = schedule.schedule(aws.client(sess, "scheduler"), aws.client(sess, "iam"), aws.client(sess, "cloudwatch"),
                             cfg, aws.account_id(aws.client(sess, "sts")),
                             image_uri(cfg, aws.client(sess, "ecr"), "training"), a.schedule, captures, model_data,
                             a.window_hours or cfg.monitor.window_hours)
    print(json.dumps(done.__dict__, indent=1))
    return 0
