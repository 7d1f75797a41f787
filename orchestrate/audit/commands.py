"""``orchestrate audit``: inputs -> run -> join -> report, each step a module returning the
value the next takes (``inputs.Request``/``Photos`` -> ``join.Transformed`` -> rows -> the
report's files). Cloud and local differ in the run step only: ``run_cloud.run`` (a new
Batch Transform job), ``run_cloud.attach`` (``--job``: one made earlier), ``run_local.run``
(the SDK's local mode, or a running serving container with ``--endpoint``)."""

from __future__ import annotations

import logging

from orchestrate.audit import inputs, join, report, run_cloud, run_local
from orchestrate.core import aws
from orchestrate.core.config import Config
from orchestrate.core.images import image_uri, local_image


def quiet_sdk() -> None:
    """The SDK logs its config search, compose file and health checks at INFO."""
    for name, level in (("sagemaker", logging.WARNING), ("sagemaker.config", logging.WARNING),
                        ("urllib3.connectionpool", logging.ERROR)):
        logging.getLogger(name).setLevel(level)


def cmd_audit(args, cfg: Config, sess) -> int:
    if not args.verbose:
        quiet_sdk()
    req = inputs.Request.from_args(args)
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    if req.local:
        photos = inputs.resolve(req, cfg, clients)
        done = run_local.run(clients, cfg, req, photos, local_image(cfg, "serving"))
    else:
        sm = aws.client(sess, "sagemaker")
        if req.job:
            req = req.of_job(sm.describe_transform_job(TransformJobName=req.job))
            photos = inputs.resolve(req, cfg, clients)
            done = run_cloud.attach(sm, clients, cfg, req, photos)
        else:
            photos = inputs.resolve(req, cfg, clients)
            planned = run_cloud.plan(sm, cfg, req, photos, image_uri(cfg, aws.client(sess, "ecr"), "serving"))
            if req.dry_run:
                print(planned.dry_run(photos))
                return 0
            done = run_cloud.run(sm, clients, cfg, req, photos, planned)
    rows = join.rows(done, req.expected, req.metadata or photos.metadata, clients, cfg.data.workers)
    report.report(rows, done, cfg.audit.recount_rows, photos.locations(done.photo_names))
    return 0
