"""``orchestrate train``, ``tune`` and ``report``: config and flags into calls of ``jobs``
(the SageMaker SDK's estimator and tuner), ``image_weights`` and ``report``; ``train --local``
runs through ``orchestrate.local``."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
from pathlib import Path

from orchestrate.core import aws, costs, image_weights
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.images import image_uri
from orchestrate.core.progress import echo
from orchestrate.data import manifest
from orchestrate.endpoint.deploy import latest_model_data
from orchestrate.local import commands as local
from orchestrate.review import golden
from orchestrate.training import report

log = logging.getLogger(__name__)


def _jobs():
    """``jobs`` on first use: it imports the SageMaker SDK (1.5 s here), which ``orchestrate
    --help``, ``report`` and the local commands do without."""
    from orchestrate.training import jobs

    return jobs


def require_weights(ecr, image: str, hyperparameters: dict) -> None:
    """Refuse, before anything bills, a job whose image lacks the ImageNet weights it needs."""
    image_weights.require_weights(image, image_weights.ecr_image_labels(ecr, image),
                                  {k: str(v) for k, v in hyperparameters.items()})


def cmd_train(args, cfg: Config, sess) -> int:
    if args.local:
        return local.train(args, cfg)
    jobs = _jobs()
    ecr = aws.client(sess, "ecr")
    image = image_uri(cfg, ecr, "training")
    if args.manifest:  # photos and metadata read in place: the manifest's bucket must be in our region
        named = manifest.read(aws.client(sess, "s3"), args.manifest)
        manifest.check_region(named, cfg.data.source_bucket, cfg.data.source_region, cfg.aws.region)
    require_weights(ecr, image, cfg.train.hyperparameters)  # before anything else is asked or billed
    s3 = aws.client(sess, "s3")
    labels = args.labels or ""
    if labels and not labels.startswith("s3://"):  # a labels file here: beside the stack's other labels
        labels = golden.upload_labels(s3, cfg, Path(labels))
    plan = jobs.plan(cfg, image, manifest_uri=args.manifest or "", calibration_uri=args.calibration or "",
                     labels_uri=labels, golden_uri=args.golden or golden.stack_golden(s3, cfg))
    print(jobs.train(sess, cfg, plan))
    return 0


def cmd_tune(args, cfg: Config, sess) -> int:
    jobs = _jobs()
    ecr = aws.client(sess, "ecr")
    image = image_uri(cfg, ecr, "training")
    if not args.job:
        require_weights(ecr, image, cfg.train.hyperparameters)
    name = args.job or jobs.tune(sess, cfg, image)
    print(name)
    if not args.promote:
        return 0
    sm = aws.client(sess, "sagemaker")
    status = aws.Poll(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                      ["HyperParameterTuningJobStatus"], done={"Completed"}, failed={"Failed", "Stopped"},
                      what=f"tuning job {name}", timeout=args.wait_seconds, delay=args.poll_seconds).run(echo)
    if status != "Completed":
        raise RuntimeError(f"tuning job {name} ended {status}: nothing to promote")
    best, tuned = jobs.best_hyperparameters(sm, name)
    log.info("promoting %s's hyperparameters %s", best, tuned)
    final = jobs.plan(cfg, image, tuned, kind="final")
    require_weights(ecr, image, final.hyperparameters)
    print(jobs.train(sess, cfg, final))
    return 0


def cmd_report(args, cfg: Config, sess) -> int:
    sm = aws.client(sess, "sagemaker")
    if args.transform_job:
        desc = sm.describe_transform_job(TransformJobName=args.transform_job)
        doc = report.transform_report(desc, cfg.costs.hourly(desc["TransformResources"]["InstanceType"]))
    elif args.tuning_job:
        if args.rules:
            raise ConfigError("--rules evaluates one training job's tensors: give --training-job, not --tuning-job")
        doc = report.fetch_tuning(sm, args.tuning_job)
    else:
        name = args.training_job or latest_model_data(sm, cfg.aws.stack)[0]
        desc = sm.describe_training_job(TrainingJobName=name)
        doc = report.training_report(desc)
        doc["verdicts"] = report.verdict_report(aws.client(sess, "s3"), desc)
        doc["serving_cost"] = {"measured": cfg.costs.measured,
                               "rows": costs.serving_costs(cfg.costs.hourly_usd, cfg.costs.img_per_s)}
        if args.rules:
            # smdebug logs to stdout, which carries the report (--json): its handler is made
            # on first import, here, so it writes to stderr with the other log lines
            with (tempfile.TemporaryDirectory(prefix="orchestrate-trial-") as tmp,
                  contextlib.redirect_stdout(sys.stderr)):
                doc["evaluated_rules"] = report.evaluate_job_rules(aws.client(sess, "s3"), desc, Path(tmp))
    print(json.dumps(doc, indent=1, default=str) if args.json else report.render(doc))
    return 0
