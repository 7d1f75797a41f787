"""``orchestrate review export|import``: people recount what the model could not vouch for.

export: the bins to recount (an audit's recount list, or an id list and where their photos
are) -> the stack's Label Studio project (made on first use) -> one task per bin not already
there, in recount order, with the model's count as a pre-annotation.
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
from orchestrate.review import collect, tasks
from orchestrate.review.labelstudio import LabelStudio

log = logging.getLogger(__name__)


def connect(cfg: Config) -> LabelStudio:
    """The configured Label Studio, its token from the environment variable the config names."""
    return LabelStudio(cfg.review.url, os.environ.get(cfg.review.token_env, ""), cfg.review.timeout)


def project_title(cfg: Config) -> str:
    return cfg.review.project or f"{cfg.aws.stack} recounts"


def _s3(sess, cfg: Config):
    return aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                    cfg.data.source_endpoint_url)


def cmd_export(a, cfg: Config, sess) -> int:
    if bool(a.audit) == bool(a.ids or a.file_list):
        raise ConfigError("give --audit DIR|S3URI, or --ids/--file-list with --photos")
    if a.audit:
        wanted = tasks.from_audit(a.audit, _s3(sess, cfg).for_uri(a.audit) if a.audit.startswith("s3://") else None)
    else:
        if not a.photos:
            raise ConfigError("--photos DIR|S3URI says where the listed bins' photos are")
        wanted = tasks.from_ids(read_ids(a.file_list or "", a.ids or ""), a.photos)
    if a.limit:
        wanted = wanted[: a.limit]
    model_version = a.model_version or (Path(a.audit).name if a.audit and not a.audit.startswith("s3://")
                                        else "audit")
    # every task is built (and every photo checked) before Label Studio is changed
    built = [(r, tasks.task(r, cfg, model_version)) for r in wanted]
    ls = connect(cfg)
    project = ls.project(project_title(cfg), tasks.LABEL_CONFIG)
    for kind, settings in _storages(built, cfg):
        ls.add_storage(project, kind, settings)
    there = {t["data"].get("bin_id") for t in ls.tasks(project)}
    new = [t for r, t in built if r.bin_id not in there]
    added = ls.import_tasks(project, new)
    print(f"review export: {added} tasks added to Label Studio project {project_title(cfg)!r} ({project}) at "
          f"{cfg.review.url}; {len(built) - len(new)} of the {len(built)} bins were there already")
    return 0


def _storages(built: list, cfg: Config) -> list[tuple[str, dict]]:
    """One import storage per photo folder or S3 prefix, in first-seen order."""
    seen: dict[str, tuple[str, dict]] = {}
    for r, _ in built:
        kind, settings = tasks.storage_for(r.photo, cfg)
        seen.setdefault(f"{kind} {sorted(settings.items())}", (kind, settings))
    return list(seen.values())


def cmd_import(a, cfg: Config, sess) -> int:
    ls = connect(cfg)
    title = project_title(cfg)
    project = ls.project(title, tasks.LABEL_CONFIG)
    labels, summary = collect.labels_of(ls.export(project), ls.users())
    out = Path(a.out)
    paths = collect.write(out, labels, summary, title)
    print(f"review import: {len(labels)} bins -> {paths['labels']}")
    print("\n".join(summary.lines()))
    if not a.no_upload and cfg.aws.bucket:
        s3 = aws.client(sess, "s3")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = f"{cfg.s3_base}/{cfg.review.labels_prefix.strip('/')}/{stamp}"
        for path in paths.values():
            bucket, key = split_s3(f"{base}/{path.name}")
            s3.upload_file(str(path), bucket, key)
        print(f"uploaded: {base}/ (the labels channel: orchestrate train --labels {base}/)")
    return 0


def cmd_review(a, cfg: Config, sess) -> int:
    return {"export": cmd_export, "import": cmd_import}[a.review_command](a, cfg, sess)
