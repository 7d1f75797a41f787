"""``python -m orchestrate``: the command line. Turns flags + config into calls of the
command modules, with clients made from one boto3 session (injectable for tests)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from orchestrate import audit_cli, aws, local_commands
from orchestrate.images import image_uri
from orchestrate.config import Config, ConfigError, load

log = logging.getLogger(__name__)
LOCAL_ROOT = local_commands.LOCAL_ROOT


def _echo(text: str) -> None:
    """Progress lines: rewritten in place on a terminal, one line per update in a log."""
    if not sys.stderr.isatty():
        text = text.strip("\r\n") + "\n" if text.strip() else ""
    sys.stderr.write(text)
    sys.stderr.flush()


def cmd_data(a, cfg: Config, sess) -> int:
    from orchestrate import data

    d = cfg.data
    source = aws.unsigned_s3(sess, d.source_region, d.source_endpoint_url)
    if d.file_list:
        ids = data.read_file_list(d.file_list)
    elif d.per_class > 0:
        ids = data.pick_per_class(source, d.source_bucket, d.per_class, d.workers)
    else:
        raise ConfigError("say which bins: data.file_list (--file-list) or data.per_class (--per-class)")
    log.info("%d bins requested from s3://%s", len(ids), d.source_bucket)
    channels = data.run(source, aws.client(sess, "s3"), source_bucket=d.source_bucket, ids=ids,
                        dest=d.local_dir, bucket=cfg.require("aws", "bucket"), prefix=cfg.aws.prefix,
                        seed=d.seed, fractions=tuple(d.fractions), workers=d.workers, skip_failed=a.skip_failed)
    for name, uri in channels.items():
        print(f"{name}\t{uri}")
    return 0


def require_weights(ecr, image: str, hyperparameters: dict) -> None:
    """Refuse, before anything bills, a job whose image lacks the ImageNet weights it needs."""
    from orchestrate import image_weights

    image_weights.require_weights(image, image_weights.ecr_image_labels(ecr, image),
                                  {k: str(v) for k, v in hyperparameters.items()})


def cmd_train(a, cfg: Config, sess) -> int:
    from orchestrate import training

    if a.local:
        return local_commands.train(a, cfg)
    ecr = aws.client(sess, "ecr")
    image = image_uri(cfg, ecr, "training")
    if a.manifest:  # photos and metadata read in place: the manifest's bucket must be in our region
        from orchestrate import manifest

        named = manifest.read(aws.client(sess, "s3"), a.manifest)
        manifest.check_region(named, cfg.data.source_bucket, cfg.data.source_region, cfg.aws.region)
    plan = training.plan(cfg, image, manifest_uri=a.manifest or "", calibration_uri=a.calibration or "")
    require_weights(ecr, image, plan.hyperparameters)
    print(training.train(sess, cfg, plan))
    return 0


def cmd_tune(a, cfg: Config, sess) -> int:
    from orchestrate import training

    ecr = aws.client(sess, "ecr")
    image = image_uri(cfg, ecr, "training")
    if not a.job:
        require_weights(ecr, image, cfg.train.hyperparameters)
    name = a.job or training.tune(sess, cfg, image)
    print(name)
    if not a.promote:
        return 0
    sm = aws.client(sess, "sagemaker")
    status = aws.Poll(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                      ["HyperParameterTuningJobStatus"], done={"Completed"}, failed={"Failed", "Stopped"},
                      what=f"tuning job {name}", timeout=a.wait_seconds, delay=a.poll_seconds).run(_echo)
    if status != "Completed":
        raise RuntimeError(f"tuning job {name} ended {status}: nothing to promote")
    best, tuned = training.best_hyperparameters(sm, name)
    log.info("promoting %s's hyperparameters %s", best, tuned)
    final = training.plan(cfg, image, tuned, kind="final")
    require_weights(ecr, image, final.hyperparameters)
    print(training.train(sess, cfg, final))
    return 0


def cmd_deploy(a, cfg: Config, sess) -> int:
    from orchestrate import deploy

    if a.local:
        return local_commands.deploy(a, cfg)
    sm = aws.client(sess, "sagemaker")
    model_data = a.model_data
    if not model_data:
        job, model_data = deploy.latest_model_data(sm, cfg.aws.stack)
        log.info("deploying the model of %s", job)
    image = image_uri(cfg, aws.client(sess, "ecr"), "serving")
    done = deploy.deploy(sm, aws.client(sess, "application-autoscaling"), cfg, image, model_data,
                         echo=_echo, poll_delay=a.poll_seconds)
    print(json.dumps(done.__dict__, indent=1))
    return 0


def cmd_invoke(a, cfg: Config, sess) -> int:
    from orchestrate import deploy

    body = Path(a.image_file).read_bytes()
    if a.local:
        return local_commands.invoke(a, cfg, body)
    ctype, reply = deploy.invoke(aws.client(sess, "sagemaker-runtime"), cfg.deploy.endpoint_name, body,
                                 a.content_type, a.expected_quantity)
    print(reply.decode("utf-8", "replace"))
    return 0


def cmd_lambda(a, cfg: Config, sess) -> int:
    from orchestrate import lambda_fn

    result = lambda_fn.deploy_function(aws.client(sess, "lambda"), aws.client(sess, "iam"), cfg,
                                       aws.account_id(aws.client(sess, "sts")), cfg.deploy.endpoint_name)
    print(json.dumps(result.__dict__, indent=1))
    return 0


def cmd_report(a, cfg: Config, sess) -> int:
    from orchestrate import costs, deploy, report

    sm = aws.client(sess, "sagemaker")
    if a.transform_job:
        desc = sm.describe_transform_job(TransformJobName=a.transform_job)
        doc = report.transform_report(desc, cfg.costs.hourly(desc["TransformResources"]["InstanceType"]))
    elif a.tuning_job:
        if a.rules:
            raise ConfigError("--rules evaluates one training job's tensors: give --training-job, not --tuning-job")
        doc = report.fetch_tuning(sm, a.tuning_job)
    else:
        name = a.training_job or deploy.latest_model_data(sm, cfg.aws.stack)[0]
        desc = sm.describe_training_job(TrainingJobName=name)
        doc = report.training_report(desc)
        doc["verdicts"] = report.verdict_report(aws.client(sess, "s3"), desc)
        doc["serving_cost"] = {"measured": cfg.costs.measured,
                               "rows": costs.serving_costs(cfg.costs.hourly_usd, cfg.costs.img_per_s)}
        if a.rules:
            # smdebug logs to stdout, which carries the report (--json): its handler is made
            # on first import, here, so it writes to stderr with the other log lines
            with (tempfile.TemporaryDirectory(prefix="orchestrate-trial-") as tmp,
                  contextlib.redirect_stdout(sys.stderr)):
                doc["evaluated_rules"] = report.evaluate_job_rules(aws.client(sess, "s3"), desc, Path(tmp))
    print(json.dumps(doc, indent=1, default=str) if a.json else report.render(doc))
    return 0


def cmd_teardown(a, cfg: Config, sess) -> int:
    from orchestrate import teardown

    clients = [aws.client(sess, s) for s in ("sagemaker", "lambda", "iam", "application-autoscaling")]
    found = teardown.find(*clients, cfg.aws.stack)
    for r in found:
        print(f"{'would delete' if a.dry_run else 'delete'}\t{r.kind}\t{r.name}")
    if not found:
        print(f"nothing of stack {cfg.aws.stack!r} to delete")
    for job in teardown.running_jobs(clients[0], cfg.aws.stack):
        print(f"still running (not stopped)\t{job.kind}\t{job.name}\t"
              f"aws sagemaker stop-transform-job --transform-job-name {job.name}")
    if not a.dry_run:
        teardown.delete(*clients, found)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orchestrate", description="bincounter's AWS control plane.",
                                epilog="Settings: orchestrate.toml < ORCHESTRATE_<SECTION>_<KEY> env < --set/flags.")
    p.add_argument("--config", default=os.environ.get("ORCHESTRATE_CONFIG", "orchestrate.toml"),
                   help="TOML config file (default: orchestrate.toml; env ORCHESTRATE_CONFIG)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, e.g. --set train.spot=false (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true")
    # --set also after the command (make train ARGS="--set ..."); a separate dest, because a
    # subparser's default would overwrite the list parsed before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--set", dest="sub_set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting (repeatable)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    s = add("data", help="download an ABID subset, split it, upload the channels")
    s.add_argument("--file-list", dest="data.file_list", metavar="PATH", help="Udacity file_list.json")
    s.add_argument("--per-class", dest="data.per_class", metavar="N", help="or: this many bins of each count 1..5")
    s.add_argument("--local-dir", dest="data.local_dir", metavar="DIR")
    s.add_argument("--skip-failed", action="store_true", help="go on without bins whose download failed")

    s = add("train", help="start a training job with our training image")
    s.add_argument("--instance-type", dest="train.instance_type", metavar="TYPE")
    s.add_argument("--instance-count", dest="train.instance_count", metavar="N")
    s.add_argument("--spot", dest="train.spot", choices=["true", "false"], help="managed spot on/off")
    s.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE", help="a hyperparameter")
    s.add_argument("--manifest", metavar="S3URI", help="one training channel from a manifest read in place "
                                                        "(orchestrate manifest ...: training.manifest)")
    s.add_argument("--calibration", metavar="S3URI_OR_DIR",
                   help="a calibration channel in ABID's layout (an S3 prefix; a folder with --local): the "
                        "temperature and verdict thresholds are fitted on these bins instead of validation")
    s.add_argument("--local", action="store_true",
                   help="train here with the SageMaker SDK's local mode (docker; no AWS account)")
    s.add_argument("--data", metavar="DIR", help="--local: the training channel (default data.local_dir)")
    s.add_argument("--local-root", default=LOCAL_ROOT, metavar="DIR", help="--local: one folder per job here")

    s = add("tune", help="start HPO over lr, batch-size, epochs")
    s.add_argument("--max-jobs", dest="tune.max_jobs", metavar="N")
    s.add_argument("--max-parallel-jobs", dest="tune.max_parallel_jobs", metavar="N")
    s.add_argument("--promote", action="store_true", help="wait, then train the best job's hyperparameters")
    s.add_argument("--job", help="promote this existing tuning job instead of starting one")
    s.add_argument("--wait-seconds", type=float, default=6 * 3600)
    s.add_argument("--poll-seconds", type=float, default=30)

    s = add("deploy", help="model + endpoint config + endpoint from the serving image")
    s.add_argument("--model-data", help="s3://.../model.tar.gz (default: the latest training job's); "
                                        "--local: a model.tar.gz or model folder (default: the newest local one)")
    s.add_argument("--local", action="store_true",
                   help="serve here with the SageMaker SDK's local mode until Ctrl-C / SIGTERM")
    s.add_argument("--port", type=int, default=8080, help="--local: the endpoint's port")
    s.add_argument("--local-root", default=LOCAL_ROOT, metavar="DIR", help="--local: where models and endpoints live")
    s.add_argument("--instance-type", dest="deploy.instance_type", metavar="TYPE")
    s.add_argument("--autoscaling-max", dest="deploy.autoscaling_max", metavar="N", help="max instances (0: no autoscaling)")
    s.add_argument("--poll-seconds", type=float, default=15)

    s = add("invoke", help="send one image to the endpoint")
    s.add_argument("image_file")
    s.add_argument("--content-type", default="image/jpeg")
    s.add_argument("--expected-quantity", type=int)
    s.add_argument("--local", action="store_true", help="the local endpoint of deploy --local")
    s.add_argument("--port", type=int, default=8080, help="--local: its port")

    add("lambda", help="create or update the Lambda front door and its role")

    audit_cli.add_parsers(add)

    s = add("report", help="status, metrics, cost of a training, tuning or transform job")
    s.add_argument("--training-job", help="default: the stack's latest completed training job")
    s.add_argument("--tuning-job")
    s.add_argument("--transform-job", help="an audit's Batch Transform job: status, instances, cost")
    s.add_argument("--rules", action="store_true",
                   help="evaluate our debugger rules (LossNotDecreasing, VanishingGradient, "
                        "PoorWeightInitialization, Overfit) on the job's smdebug tensors in S3")
    s.add_argument("--json", action="store_true")

    s = add("teardown", help="delete what orchestrate created for this stack")
    s.add_argument("--dry-run", action="store_true", help="only list it")
    return p


COMMANDS = {"data": cmd_data, "train": cmd_train, "tune": cmd_tune, "deploy": cmd_deploy, "invoke": cmd_invoke,
            "lambda": cmd_lambda, "report": cmd_report, "teardown": cmd_teardown, **audit_cli.COMMANDS}


def main(argv: list[str] | None = None, session=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    flags = [f"{k}={v}" for k, v in vars(a).items() if "." in k and v is not None]
    flags += [f"train.hyperparameters.{hp}" for hp in getattr(a, "hp", [])]
    try:
        cfg = load(a.config, overrides=a.set + a.sub_set + flags)
        sess = session or aws.session(cfg.aws.region)
        return COMMANDS[a.command](a, cfg, sess)
    except (ConfigError, LookupError, RuntimeError, OSError, ClientError, BotoCoreError, ValueError) as exc:
        print(f"orchestrate {a.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
