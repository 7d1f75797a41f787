"""``python -m orchestrate``: the command line. It only parses flags and dispatches: each
command is a function of its concern's ``commands`` module (``data``, ``training``,
``endpoint``, ``audit``), called with the flags, the config and one boto3 session
(injectable for tests). Nothing imports this module but ``__main__``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from bincounter.reviews import PURPOSES
from orchestrate.access.commands import cmd_policy
from orchestrate.audit.commands import cmd_audit
from orchestrate.core import aws
from orchestrate.core.config import ConfigError, load
from orchestrate.data.commands import cmd_data, cmd_manifest
from orchestrate.data.shards import cmd_shards
from orchestrate.endpoint.commands import cmd_deploy, cmd_invoke, cmd_lambda, cmd_teardown
from orchestrate.local.commands import LOCAL_ROOT
from orchestrate.monitor.commands import cmd_monitor
from orchestrate.review.commands import cmd_golden, cmd_promote, cmd_review
from orchestrate.review.picks import DEFAULT_STRATEGY, STRATEGIES
from orchestrate.training.commands import cmd_report, cmd_train, cmd_tune


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
    s.add_argument("--labels", metavar="S3URI_OR_DIR",
                   help="people's counts (review import's labels.jsonl; a folder or file with --local): they "
                        "replace the recorded counts of those bins")
    s.add_argument("--golden", metavar="S3URI_OR_DIR",
                   help="the golden set, whose bins never train (default: the stack's, when `golden` made one)")
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
    s.add_argument("--no-capture", dest="monitor.capture", action="store_const", const="false",
                   help="no endpoint data capture (default: on, [monitor] in orchestrate.toml)")

    s = add("invoke", help="send one image to the endpoint")
    s.add_argument("image_file")
    s.add_argument("--content-type", default="image/jpeg")
    s.add_argument("--expected-quantity", type=int)
    s.add_argument("--local", action="store_true", help="the local endpoint of deploy --local")
    s.add_argument("--port", type=int, default=8080, help="--local: its port")

    add("lambda", help="create or update the Lambda front door and its role")

    s = add("shards", help="WebDataset tar shards of ABID bins and their index (train/validation/test apart)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-dir", metavar="DIR", help="a folder of ABID-layout bins (images/, metadata/), here")
    src.add_argument("--manifest", metavar="S3URI", help="or, by a Processing job: the bins of a manifest")
    src.add_argument("--file-list", metavar="PATH", help="... of a Udacity file_list.json (the source bucket's)")
    src.add_argument("--ids", metavar="PATH", help="... of an id list, one per line (the source bucket's)")
    src.add_argument("--prefix", metavar="S3URI", help="... every photo under s3://bucket/prefix/")
    src.add_argument("--from-parts", metavar="DIR", help=argparse.SUPPRESS)  # the job's own step
    s.add_argument("--out", metavar="DIR|S3URI", help="the shards, their entries and shards.json (a job: an s3:// "
                                                      "prefix, default s3://BUCKET/PREFIX/shards/)")
    s.add_argument("--instance-count", type=int, default=2, help="the job's instances (default 2)")
    s.add_argument("--instance-type", help="the job's instance type (default ml.m5.large)")
    s.add_argument("--skip-in", metavar="S3URI", help=argparse.SUPPRESS)  # the job's output: finished shards
    s.add_argument("--bins", metavar="DIR", help=argparse.SUPPRESS)  # the local job's step: bins in a folder
    s.add_argument("--host-share", metavar="PATH", help=argparse.SUPPRESS)  # ... its parts by resourceconfig.json
    s.add_argument("--local", action="store_true",
                   help="with --from-dir: the Processing job under the SageMaker SDK's local mode (--instance-count)")
    s.add_argument("--local-root", default=LOCAL_ROOT, help=f"local mode's job folders (default {LOCAL_ROOT})")
    s.add_argument("--shard-mb", type=float, default=150, help="about this many MB per shard (default 150)")
    s.add_argument("--split-seed", type=int, default=0, help="a bin's split is a hash of this and its id")

    s = add("manifest", help="manifest files over the public bucket (or any S3 prefix), read in place")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--file-list", metavar="PATH", help="Udacity file_list.json (bins of the source bucket)")
    src.add_argument("--ids", metavar="PATH", help="bin ids of the source bucket, one per line")
    src.add_argument("--listing", metavar="S3URI", help="every photo under s3://bucket/prefix/")
    s.add_argument("--metadata-prefix", default="", metavar="S3URI",
                   help="with --listing: where <id>.json are (default: metadata/ beside bin-images/)")
    s.add_argument("--name", default="abid", help="upload to s3://BUCKET/PREFIX/manifests/NAME/")
    s.add_argument("--out", metavar="DIR", help="also write the manifests here")

    s = add("audit", help="count every bin photo with one Batch Transform job; the bins to recount")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--images", metavar="S3URI|DIR", help="photos under a prefix (with --local also a folder)")
    src.add_argument("--manifest", metavar="S3URI", help="a manifest of photos")
    src.add_argument("--file-list", metavar="PATH", help="Udacity file_list.json: its bins, read in place")
    src.add_argument("--ids", metavar="PATH", help="bin ids of the source bucket, one per line")
    src.add_argument("--job", help="join an existing transform job's outputs again")
    exp = s.add_mutually_exclusive_group()
    exp.add_argument("--metadata", metavar="S3URI|DIR",
                     help="ABID <id>.json files (default: metadata/ beside bin-images/ or images/)")
    exp.add_argument("--expected", metavar="CSV", help="bin_id,expected_quantity (a file or s3://)")
    s.add_argument("--model-data", help="s3://.../model.tar.gz (default: the stack's latest training job's); "
                                        "with --local a model folder or model.tar.gz")
    s.add_argument("--instance-type", dest="audit.instance_type", metavar="TYPE")
    s.add_argument("--instance-count", dest="audit.instance_count", metavar="N")
    s.add_argument("--out", metavar="DIR", help="audit.csv / audit.md / audit.json here (default: audit/JOB)")
    s.add_argument("--local", action="store_true",
                   help="run the transform here with the SageMaker SDK's local mode (Docker)")
    s.add_argument("--endpoint", metavar="URL", help="with --local: a serving container already running in "
                                                    "batch mode (compose's audit profile) instead of the SDK's")
    s.add_argument("--dry-run", action="store_true", help="print the requests, send none")
    s.add_argument("--poll-seconds", type=float, default=30)

    s = add("report", help="status, metrics, cost of a training, tuning or transform job")
    s.add_argument("--training-job", help="default: the stack's latest completed training job")
    s.add_argument("--tuning-job")
    s.add_argument("--transform-job", help="an audit's Batch Transform job: status, instances, cost")
    s.add_argument("--rules", action="store_true",
                   help="evaluate our debugger rules (LossNotDecreasing, VanishingGradient, "
                        "PoorWeightInitialization, Overfit) on the job's smdebug tensors in S3")
    s.add_argument("--json", action="store_true")

    s = add("monitor", help="a window of the endpoint's data capture against the model's reference: drift "
                            "tests, the live verdict mix, label-free estimates -> monitor.md/.json/.html")
    s.add_argument("--captures", metavar="S3URI|DIR",
                   help="capture files (SageMaker's ENDPOINT/VARIANT/yyyy/mm/dd/hh/ layout under it); with "
                        "--schedule the endpoint's capture prefix by default")
    s.add_argument("--model-data", metavar="S3URI|PATH",
                   help="the served model: a model.tar.gz (S3 or local) or a model folder; with --schedule the "
                        "endpoint's current model by default")
    s.add_argument("--since", metavar="UTC", help="first hour of the window, e.g. 2026-12-03T08 (default: all)")
    s.add_argument("--until", metavar="UTC", help="end of the window, exclusive (default: now)")
    s.add_argument("--out", default="monitor", metavar="DIR", help="monitor.json / .md / .html here")
    s.add_argument("--window-hours", type=int, metavar="N", help="the N hours before --until (or now)")
    s.add_argument("--fail-on-drift", action="store_true", help="exit 3 on drift (for pipelines)")
    s.add_argument("--publish-metrics", action="store_true",
                   help="put Drift, Answers and each test's statistic and p-value in CloudWatch")
    s.add_argument("--schedule", metavar="EXPR", help="run the report on a timer in the cloud, e.g. 'rate(1 day)': "
                                                      "EventBridge Scheduler -> a Processing job, alarms on drift "
                                                      "and on silence")
    s.add_argument("--status", action="store_true",
                   help="the scheduled monitor: its last runs (failure reasons), the model it judges against, "
                        "the alarms' states")

    s = add("review", help="people recount in Label Studio: export the recount list as tasks, import their counts")
    rsub = s.add_subparsers(dest="review_command", required=True, metavar="STEP")
    review_common = argparse.ArgumentParser(add_help=False, parents=[common])
    review_common.add_argument("--insecure-http", dest="review.insecure_http", action="store_const", const="true",
                               help="allow plain http:// to a Label Studio on another host (the token in the clear)")
    r = rsub.add_parser("export", parents=[review_common],
                        help="an audit's recount list (or an id list) -> Label Studio tasks")
    r.add_argument("--audit", metavar="DIR|S3URI", help="the folder (or s3:// copy) orchestrate audit wrote")
    r.add_argument("--ids", metavar="FILE", help="or: bin ids, one per line (with --photos)")
    r.add_argument("--file-list", metavar="FILE", help="or: a Udacity file_list.json (with --photos)")
    r.add_argument("--photos", metavar="DIR|S3URI", help="where the listed bins' photos are (<id>.jpg)")
    r.add_argument("--limit", type=int, metavar="N", help="only the first N bins of the recount order")
    r.add_argument("--purpose", choices=PURPOSES, default=PURPOSES[0],
                   help="recount: the audit's recount list, to fix the inventory (default); training: --budget "
                        "bins picked by --strategy to teach the model (docs/reviews.md \"Which bins teach\")")
    r.add_argument("--strategy", choices=list(STRATEGIES), default=DEFAULT_STRATEGY,
                   help=f"--purpose training: how bins are picked (default {DEFAULT_STRATEGY})")
    r.add_argument("--budget", type=int, metavar="B", help="--purpose training: how many bins people count")
    r.add_argument("--model", metavar="DIR|TAR.GZ|S3URI",
                   help="--purpose training: the audited model, for the scoring pass margin, typical and mixed need")
    r.add_argument("--seed", type=int, default=0, help="--purpose training: the strategy's seed")
    r.add_argument("--model-version", help="names the pre-annotations (default: the audit folder's name)")
    r = rsub.add_parser("import", parents=[review_common], help="the project's answers -> labels.jsonl + summary")
    r.add_argument("--out", default="review", metavar="DIR", help="labels.jsonl / labels-summary.json here")
    r.add_argument("--no-upload", action="store_true", help="do not copy them to the stack's bucket")

    s = add("policy", help="a least-privilege IAM policy for this stack, filled: execution (the SageMaker role of "
                           "[aws] role_arn), labelling (review export/import), release (golden, promote, deploy)")
    s.add_argument("name", choices=["execution", "labelling", "release"])

    s = add("golden", help="fix the stack's golden evaluation set (once): from people's counts or a test split")
    s.add_argument("--from", dest="source", required=True, metavar="LABELS|SPLIT_JSON",
                   help="review import's labels.jsonl (bins people counted), or a run's output/data/split.json")
    s.add_argument("--photos", metavar="DIR|S3URI", help="with a split.json: where its bins' photos are")
    s.add_argument("--out", default="golden", metavar="DIR", help="golden.manifest here (and in the stack's bucket)")
    s.add_argument("--replace", action="store_true", help="replace the stack's golden set (old scores stop comparing)")
    s.add_argument("--holdout", type=float, default=0.3, metavar="FRACTION",
                   help="from a labels.jsonl: this share of people's counts (per count) is the golden set; the "
                        "rest goes to training-labels.jsonl for training (default 0.3; 1: all of them)")
    s.add_argument("--seed", type=int, default=0, help="which bins --holdout picks (a hash of seed and bin id)")

    s = add("promote", help="score the candidate and the approved model on the golden set; approve the candidate "
                            "and update the endpoint only when it wins beyond noise")
    s.add_argument("--candidate", metavar="ARN", help="a model package (default: the newest pending one)")
    s.add_argument("--golden", metavar="FILE", help="a golden.manifest (default: the stack's)")
    s.add_argument("--scores", metavar="DIR|S3URI", help="where scores are kept (default: beside the golden set)")
    s.add_argument("--local", action="store_true", help="score with the SDK's local transform here (docker)")
    s.add_argument("--force", action="store_true", help="approve anyway (recorded in the approval description)")
    s.add_argument("--no-deploy", action="store_true", help="approve only; leave the endpoint as it is")

    s = add("teardown", help="delete what orchestrate created for this stack")
    s.add_argument("--dry-run", action="store_true", help="only list it")
    return p


COMMANDS = {"data": cmd_data, "manifest": cmd_manifest, "shards": cmd_shards, "train": cmd_train, "tune": cmd_tune, "deploy": cmd_deploy,
            "invoke": cmd_invoke, "lambda": cmd_lambda, "audit": cmd_audit, "monitor": cmd_monitor,
            "review": cmd_review, "policy": cmd_policy, "golden": cmd_golden, "promote": cmd_promote, "report": cmd_report, "teardown": cmd_teardown}


def main(argv: list[str] | None = None, session=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    flags = [f"{k}={v}" for k, v in vars(args).items() if "." in k and v is not None]
    flags += [f"train.hyperparameters.{hp}" for hp in getattr(args, "hp", [])]
    try:
        cfg = load(args.config, overrides=args.set + args.sub_set + flags)
        sess = session or aws.session(cfg.aws.region)
        return COMMANDS[args.command](args, cfg, sess)
    except (ConfigError, LookupError, RuntimeError, OSError, ClientError, BotoCoreError, Boto3Error,
            ValueError) as exc:  # Boto3Error: an upload or download refused (S3UploadFailedError)
        print(f"orchestrate {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
