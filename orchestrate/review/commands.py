"""``orchestrate review export|import``, ``golden`` and ``promote``: people recount what the model
could not vouch for, a golden set is fixed, and a new model replaces the served one on evidence.

export: the bins to count (``--purpose recount``: an audit's recount list, or an id list and
where their photos are; ``--purpose training``: B audited bins a strategy picks to teach the
model) -> the stack's Label Studio project (made on first use) -> one task per bin not already
there, in that order, blind unless ``[review] blind`` is off.
import: the project's answers -> labels.jsonl (``bincounter.reviews``) and labels-summary.json
in ``--out``, and a copy beside the stack's manifests in S3 (``[review] labels_prefix``).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.ids import read_ids
from orchestrate.core.store import split_s3
from orchestrate.review import collect, golden, promote, tasks, teach
from orchestrate.review.labelstudio import LabelStudio

log = logging.getLogger(__name__)


def connect(cfg: Config) -> LabelStudio:
    """The configured Label Studio, its token from the environment variable the config names."""
    return LabelStudio(cfg.review.url, os.environ.get(cfg.review.token_env, ""), cfg.review.timeout,
                       cfg.review.insecure_http)


def project_title(cfg: Config) -> str:
    return cfg.review.project or f"{cfg.aws.stack} recounts"


def _s3(sess, cfg: Config):
    return aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                    cfg.data.source_endpoint_url)


def cmd_export(args, cfg: Config, sess) -> int:
    if bool(args.audit) == bool(args.ids or args.file_list):
        raise ConfigError("give --audit DIR|S3URI, or --ids/--file-list with --photos")
    training = args.purpose == "training"
    if training and not (args.audit and args.budget):
        raise ConfigError("--purpose training picks --budget B bins from an audit (--audit)")
    ls = connect(cfg)
    found = ls.find(project_title(cfg))
    there = {t["data"].get("bin_id") for t in ls.tasks(found)} if found is not None else set()
    clients = _s3(sess, cfg)
    if training:
        wanted = teach.picked(args.audit, args.strategy, args.budget, args.seed, args.model, there, clients)
    elif args.audit:
        wanted = tasks.from_audit(args.audit, clients.for_uri(args.audit) if args.audit.startswith("s3://") else None)
    else:
        if not args.photos:
            raise ConfigError("--photos DIR|S3URI says where the listed bins' photos are")
        wanted = tasks.from_ids(read_ids(args.file_list or "", args.ids or ""), args.photos)
    if args.limit:
        wanted = wanted[: args.limit]
    model_version = args.model_version or (Path(args.audit).name if args.audit and not args.audit.startswith("s3://")
                                        else "audit")
    strategy = args.strategy if training else ""
    # every task is built (and every photo checked) before Label Studio is changed
    built = [(r, tasks.task(r, cfg, model_version, args.purpose, strategy)) for r in wanted]
    config = tasks.label_config(cfg.review.blind)
    project = found if found is not None else ls.project(project_title(cfg), config)
    if found is not None and tasks.shows_expected(ls.label_config(project)) == cfg.review.blind:
        # the choices are the same either way: answers already given stay valid
        ls.set_label_config(project, config)
        print(f"review export: the project's tasks are now {'blind' if cfg.review.blind else 'not blind'} "
              "([review] blind)")
    for kind, settings in _storages(built, cfg):
        ls.add_storage(project, kind, settings)
    new = [t for r, t in built if r.bin_id not in there]
    added = ls.import_tasks(project, new)
    why = f"to teach the model ({strategy}, B = {args.budget})" if training else "to recount"
    print(f"review export: {added} tasks {why} added to Label Studio project {project_title(cfg)!r} ({project}) at "
          f"{cfg.review.url}; {len(built) - len(new)} of the {len(built)} bins were there already")
    return 0


def _storages(built: list, cfg: Config) -> list[tuple[str, dict]]:
    """One import storage per photo folder or S3 prefix, in first-seen order."""
    seen: dict[str, tuple[str, dict]] = {}
    for r, _ in built:
        kind, settings = tasks.storage_for(r.photo, cfg)
        seen.setdefault(f"{kind} {sorted(settings.items())}", (kind, settings))
    return list(seen.values())


def cmd_import(args, cfg: Config, sess) -> int:
    ls = connect(cfg)
    title = project_title(cfg)
    project = ls.project(title, tasks.label_config(cfg.review.blind))
    labels, summary = collect.labels_of(ls.export(project), ls.users())
    out = Path(args.out)
    paths = collect.write(out, labels, summary, title)
    print(f"review import: {len(labels)} bins -> {paths['labels']}")
    print("\n".join(summary.lines()))
    if not args.no_upload and cfg.aws.bucket:
        s3 = aws.client(sess, "s3")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = f"{cfg.s3_base}/{cfg.review.labels_prefix.strip('/')}/{stamp}"
        for path in paths.values():
            bucket, key = split_s3(f"{base}/{path.name}")
            s3.upload_file(str(path), bucket, key)
        print(f"uploaded: {base}/ (the labels channel: orchestrate train --labels {base}/)")
    return 0


def cmd_review(args, cfg: Config, sess) -> int:
    return {"export": cmd_export, "import": cmd_import}[args.review_command](args, cfg, sess)


def cmd_golden(args, cfg: Config, sess) -> int:
    """The stack's golden set, made once (``--replace`` makes a new one: old scores stop comparing).
    From people's counts, ``--holdout`` of them (stratified by count, fixed by ``--seed``) becomes
    the golden set and the rest is written beside it for training: golden bins never train."""
    s3 = aws.client(sess, "s3") if cfg.aws.bucket else None
    if s3 is not None and golden.stack_golden(s3, cfg) and not args.replace:
        raise ConfigError(f"the stack has a golden set at {golden.stack_prefix(cfg)}: it is fixed once, so that "
                          "every model is scored on the same bins (--replace makes a new one)")
    made = golden.make(Path(args.source), args.photos or "", Path(args.out), args.holdout, args.seed)
    print(f"golden set: {made.n} bins, sha256 {made.sha256} -> {made.path}")
    if made.rest is not None:
        print(f"for training: {made.rest_n} of people's counts -> {made.rest} "
              f"(orchestrate train --labels {made.rest})")
    if s3 is not None:
        bucket, key = split_s3(golden.stack_prefix(cfg) + golden.GOLDEN_FILE)
        s3.upload_file(str(made.path), bucket, key)
        print(f"uploaded: s3://{bucket}/{key} (training leaves these bins out; promote scores on them)")
    return 0


def cmd_promote(args, cfg: Config, sess) -> int:
    return promote.run(args, cfg, sess)
