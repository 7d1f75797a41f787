"""``orchestrate monitor``: a window of the endpoint's data capture against the model's
reference -> monitor.json / .md / .html and the line ``drift: yes|no``.

Reads captures from an S3 prefix or a folder (the runtime emulator's ``--capture-dir``,
compose's ``captures`` volume). Exit 0 whenever the window could be read, drift or not;
``--fail-on-drift`` exits 3 on drift, for pipelines. ``--publish-metrics`` puts the
results in CloudWatch once the report is written (what the scheduled run does);
``--schedule`` sets that run up (``schedule``), ``--status`` says how it is going (``status``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bincounter.monitoring import drift, report
from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.exits import DECLINED
from orchestrate.core.images import image_uri
from orchestrate.core.served import capture_uri, endpoint_exists, serving_model_data
from orchestrate.monitor import schedule, status, window

log = logging.getLogger(__name__)


def cmd_monitor(args, cfg: Config, sess) -> int:
    if args.status:
        return _status(cfg, sess)
    if args.schedule:
        return _schedule(args, cfg, sess)
    if not args.captures or not args.model_data:
        raise ConfigError("--captures and --model-data say what to report on (or --schedule EXPR to run it on a "
                          "timer, --status to see how that goes)")
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    until = window.parse_time(args.until or "", "--until")
    since = window.parse_time(args.since or "", "--since")
    if args.window_hours:
        if since:
            raise ConfigError("give --since or --window-hours, not both")
        since = (until or datetime.now(timezone.utc)) - timedelta(hours=args.window_hours)
    span = window.Span(since, until)
    card, reference = window.load_model(args.model_data, clients)
    read, files, unread = window.read(args.captures, span, clients)
    comparison = drift.compare(reference, read.answers, alpha=cfg.monitor.alpha, min_answers=cfg.monitor.min_answers)
    bounds = {k: v.isoformat() if v else "" for k, v in (("since", since), ("until", until))}
    doc = {"window": {"captures": args.captures, **bounds, "files": files, "lines": read.lines,
                      "errors": read.errors, "bad": read.bad, "unread_files": unread},
           "model": args.model_data, "reference": report.reference_summary(reference), "comparison": comparison}
    paths = report.write(doc, Path(args.out))
    print(report.verdict_line(doc))
    print(f"report: {paths['md']} ({comparison['n']} answers from {files - len(unread)} of {files} files; "
          f"{len(read.bad)} lines not read)")
    for where, why in unread[:5]:
        print(f"file not read: {where}: {why}")
    if args.publish_metrics:
        # only now, with the report written: a run that fails publishes nothing, and the alarms'
        # missing data says so; stamped with the run's own time, so a slow run counts for its period
        schedule.publish(aws.client(sess, "cloudwatch"), cfg.deploy.endpoint_name, comparison, until)
    if not report.judged(doc):  # too few answers to test: never a quiet "no drift"
        return DECLINED
    return DECLINED if args.fail_on_drift and comparison["drift"] else 0


def _schedule(args, cfg: Config, sess) -> int:
    """The report every EXPR on a Processing job; captures default to the endpoint's, the model to
    the one it serves now (deploy and promote keep it on the served model afterwards)."""
    endpoint = cfg.deploy.endpoint_name
    captures = args.captures or f"{capture_uri(cfg)}/{endpoint}/"
    model_data = args.model_data or serving_model_data(aws.client(sess, "sagemaker"), endpoint)
    if not captures.startswith("s3://") or not model_data.startswith("s3://"):
        raise ConfigError("--schedule runs in the cloud: --captures and --model-data must be s3:// locations")
    done = schedule.schedule(aws.client(sess, "scheduler"), aws.client(sess, "iam"), aws.client(sess, "cloudwatch"),
                             cfg, aws.account_id(aws.client(sess, "sts")),
                             image_uri(cfg, aws.client(sess, "ecr"), "training"), args.schedule, captures,
                             model_data, args.window_hours or cfg.monitor.window_hours)
    print(json.dumps(done.__dict__, indent=1))
    return 0


def _status(cfg: Config, sess) -> int:
    sm = aws.client(sess, "sagemaker")
    endpoint = cfg.deploy.endpoint_name
    served = serving_model_data(sm, endpoint) if endpoint_exists(sm, endpoint) else ""
    print("\n".join(status.lines(sm, aws.client(sess, "cloudwatch"), aws.client(sess, "scheduler"), cfg, served)))
    return 0
