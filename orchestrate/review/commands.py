"""``orchestrate review export|import``: people recount what the model could not vouch for.

export: the bins to recount (an audit's recount list, or an id list and where their photos
are) -> the stack's Label Studio project (made on first use) -> one task per bin not already
there, in recount order, with the model's count as a pre-annotation.
import: the project's answers -> labels.jsonl (``bincounter.reviews``) and labels-summary.json
in ``--out``, and a copy beside the stack's manifests in S3 (``[review] labels_prefix``).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.ids import read_ids
from orchestrate.core.store import split_s3
from orchestrate.review import collect, golden, tasks
from orchestrate.review.labelstudio import LabelStudio

log = logging.getLogger(__name__)
# promote refused the candidate (for pipelines, like monitor's drift)
REFUSED_EXIT = 3


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


def cmd_policy(a, cfg: Config, sess) -> int:
    """The loop's IAM policy for this stack, filled (attach it to whoever runs the loop)."""
    from orchestrate.review.registry import loop_policy

    account = aws.client(sess, "sts").get_caller_identity()["Account"]
    print(json.dumps(loop_policy(cfg, account, a.photo_bucket or cfg.data.source_bucket), indent=1))
    return 0


def cmd_review(a, cfg: Config, sess) -> int:
    return {"export": cmd_export, "import": cmd_import, "policy": cmd_policy}[a.review_command](a, cfg, sess)


def cmd_golden(a, cfg: Config, sess) -> int:
    """The stack's golden set, made once (``--replace`` makes a new one: old scores stop comparing)."""
    s3 = aws.client(sess, "s3") if cfg.aws.bucket else None
    if s3 is not None and golden.stack_golden(s3, cfg) and not a.replace:
        raise ConfigError(f"the stack has a golden set at {golden.stack_prefix(cfg)}: it is fixed once, so that "
                          "every model is scored on the same bins (--replace makes a new one)")
    path, sha, n = golden.make(Path(a.source), a.photos or "", Path(a.out))
    print(f"golden set: {n} bins, sha256 {sha} -> {path}")
    if s3 is not None:
        bucket, key = split_s3(golden.stack_prefix(cfg) + golden.GOLDEN_FILE)
        s3.upload_file(str(path), bucket, key)
        print(f"uploaded: s3://{bucket}/{key} (training leaves these bins out; promote scores on them)")
    return 0


def _golden_here(a, cfg: Config, s3, work: Path) -> Path:
    if a.golden:
        return Path(a.golden)
    if not cfg.aws.bucket or not golden.stack_golden(s3, cfg):
        raise ConfigError("no golden set: make one with `orchestrate golden --from ...`, or give --golden FILE")
    bucket, key = split_s3(golden.stack_prefix(cfg) + golden.GOLDEN_FILE)
    s3.download_file(bucket, key, str(work / golden.GOLDEN_FILE))
    return work / golden.GOLDEN_FILE


def cmd_promote(a, cfg: Config, sess) -> int:
    import tempfile

    from bincounter.reviews import digest, read_labels
    from orchestrate.core.images import image_uri, local_image
    from orchestrate.endpoint.deploy import deploy
    from orchestrate.review import golden_audit, promote, registry, scoring

    sm, s3 = aws.client(sess, "sagemaker"), aws.client(sess, "s3")
    image = local_image(cfg, "serving") if a.local else image_uri(cfg, aws.client(sess, "ecr"), "serving")
    registry.register_new(sm, s3, cfg, image)
    candidate = a.candidate or next((p["ModelPackageArn"] for p in registry.packages(sm, cfg, registry.PENDING)), "")
    if not candidate:
        raise ConfigError(f"no pending model package in {registry.group_name(cfg)}: train a model first")
    approved = next((p["ModelPackageArn"] for p in registry.packages(sm, cfg, registry.APPROVED)
                     if p["ModelPackageArn"] != candidate), None)
    with tempfile.TemporaryDirectory(prefix="orchestrate-promote-") as tmp:
        path = _golden_here(a, cfg, s3, Path(tmp))
        labels = [g for g in read_labels(path).values() if g.count is not None]
        sha = digest(path)
        cache = golden_audit.ScoreCache(a.scores or (golden.stack_prefix(cfg) + "scores" if cfg.aws.bucket
                                                     else "promote/scores"), s3)
        clients = _s3(sess, cfg)
        scores = {}
        for name, arn in (("candidate", candidate), ("approved", approved)):
            if arn is None:
                continue
            data = registry.model_data(sm, arn)
            key = golden_audit.cache_key(sha, data)
            scores[name] = cache.get(key)
            if scores[name] is None:
                rows = golden_audit.answers(clients, sm, cfg, labels, data, image, Path(tmp) / name, a.local)
                scores[name] = scoring.score(rows, {g.bin_id: g.count for g in labels})
                cache.put(key, scores[name])
            else:
                print(f"{name}: scored on this golden set before ({key})")
    targets = json.loads(sm.describe_model_package(ModelPackageName=candidate)
                         .get("CustomerMetadataProperties", {}).get("targets", "{}"))
    decision = promote.decide(scores["candidate"], scores.get("approved"), targets, cfg.review.promote_alpha,
                              a.force)
    print(f"golden set sha256 {sha}, {len(labels)} bins\ncandidate {candidate}\napproved  {approved or '(none yet)'}")
    print("\n".join(promote.table(scores)))
    if not decision.approve:
        print(f"refused: {decision.why} (--force approves anyway, and says so in the approval)")
        return REFUSED_EXIT
    won = scores["candidate"]
    registry.decide(sm, candidate, registry.APPROVED, decision.description,
                    {"golden_sha256": sha, "golden_n": str(won.n), "golden_accuracy": f"{won.accuracy:.4f}",
                     "golden_rmse": f"{won.rmse:.4f}", "golden_auto_share": f"{won.auto_share:.4f}"})
    print(f"approved: {decision.description}")
    if not a.no_deploy and not a.local and any(e["EndpointName"] == cfg.deploy.endpoint_name for e in
                                               sm.list_endpoints(NameContains=cfg.deploy.endpoint_name)["Endpoints"]):
        done = deploy(sm, aws.client(sess, "application-autoscaling"), cfg, image, registry.model_data(sm, candidate))
        print(f"endpoint {done.endpoint} now serves it ({done.status})")
    return 0
