"""``orchestrate deploy``, ``invoke``, ``lambda`` and ``teardown``: config and flags into
calls of ``deploy``, ``lambda_fn`` and ``teardown``; ``--local`` runs through
``orchestrate.local``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from orchestrate.core import aws
from orchestrate.core.config import Config
from orchestrate.core.images import image_uri
from orchestrate.core.progress import echo
from orchestrate.endpoint import deploy, lambda_fn, teardown
from orchestrate.endpoint.release import release
from orchestrate.local import commands as local

log = logging.getLogger(__name__)


def cmd_deploy(args, cfg: Config, sess) -> int:
    if args.local:
        return local.deploy(args, cfg)
    sm = aws.client(sess, "sagemaker")
    model_data = args.model_data
    if not model_data:
        job, model_data = deploy.latest_model_data(sm, cfg.aws.stack)
        log.info("deploying the model of %s", job)
    image = image_uri(cfg, aws.client(sess, "ecr"), "serving")
    done, before = release(sm, aws.client(sess, "application-autoscaling"), aws.client(sess, "scheduler"), cfg,
                           image, model_data, echo=echo, poll_delay=args.poll_seconds)
    print(json.dumps({**done.__dict__, "monitor_judged_before": before}, indent=1))
    return 0


def cmd_invoke(args, cfg: Config, sess) -> int:
    body = Path(args.image_file).read_bytes()
    if args.local:
        return local.invoke(args, cfg, body)
    ctype, reply = deploy.invoke(aws.client(sess, "sagemaker-runtime"), cfg.deploy.endpoint_name, body,
                                 args.content_type, args.expected_quantity)
    print(reply.decode("utf-8", "replace"))
    return 0


def cmd_lambda(args, cfg: Config, sess) -> int:
    result = lambda_fn.deploy_function(aws.client(sess, "lambda"), aws.client(sess, "iam"), cfg,
                                       aws.account_id(aws.client(sess, "sts")), cfg.deploy.endpoint_name)
    print(json.dumps(result.__dict__, indent=1))
    return 0


def cmd_teardown(args, cfg: Config, sess) -> int:
    clients = [aws.client(sess, s) for s in ("sagemaker", "lambda", "iam", "application-autoscaling",
                                             "scheduler", "cloudwatch")]
    found = teardown.find(*clients, cfg.aws.stack)
    for r in found:
        print(f"{'would delete' if args.dry_run else 'delete'}\t{r.kind}\t{r.name}")
    if not found:
        print(f"nothing of stack {cfg.aws.stack!r} to delete")
    for job in teardown.running_jobs(clients[0], cfg.aws.stack):
        print(f"still running (not stopped)\t{job.kind}\t{job.name}\t"
              f"aws sagemaker stop-transform-job --transform-job-name {job.name}")
    if not args.dry_run:
        teardown.delete(*clients, found)
    return 0
