"""``orchestrate promote`` as four steps, each returning what the next takes:

register (every completed training job of the stack -> a pending model package; the candidate)
-> score (candidate and incumbent on the golden set, through the audit's own transform; a
score is kept by golden hash and model and never computed twice) -> decide
(``decision``: on evidence only) -> release (the package Approved or Rejected with the reason;
when approved, the endpoint and the monitor's schedule onto the new model).

The incumbent is what the endpoint serves (read from the endpoint and checked against the
registry); with no endpoint (``--local``, or none deployed yet), the newest approved package.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bincounter.modelcard import ModelCard
from bincounter.reviews import digest, read_labels
from orchestrate.audit.run_cloud import read_card
from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.exits import DECLINED
from orchestrate.core.images import image_uri, local_image
from orchestrate.core.served import endpoint_exists, serving_model_data
from orchestrate.core.store import split_s3
from orchestrate.endpoint.release import release as release_endpoint
from orchestrate.review import decision, golden, golden_audit, registry
from orchestrate.review.scoring import Score, score


@dataclass(frozen=True)
class Contest:
    candidate: str                  # a model package ARN
    candidate_data: str
    incumbent: str | None           # the incumbent's package ARN, when the registry holds it approved
    incumbent_data: str | None      # the model the incumbent serves (None: nothing to beat)
    note: str = ""                  # how the incumbent was found


def register(sm, s3, cfg: Config, image: str, candidate: str = "") -> str:
    """Every completed job of the stack as a package; the candidate (default: the newest pending)."""
    registry.register_new(sm, s3, cfg, image)
    found = candidate or next((p["ModelPackageArn"] for p in registry.packages(sm, cfg, registry.PENDING)), "")
    if not found:
        raise ConfigError(f"no pending model package in {registry.group_name(cfg)}: train a model first")
    return found


def contest(sm, cfg: Config, candidate: str, local: bool) -> Contest:
    """The candidate and the incumbent it has to beat."""
    data = registry.model_data(sm, candidate)
    # newest first, each package described only when it is looked at (not the whole history up front)
    approved = ((p["ModelPackageArn"], registry.model_data(sm, p["ModelPackageArn"]))
                for p in registry.packages(sm, cfg, registry.APPROVED) if p["ModelPackageArn"] != candidate)
    endpoint = cfg.deploy.endpoint_name
    if not local and endpoint_exists(sm, endpoint):
        served = serving_model_data(sm, endpoint)
        arn = next((a for a, d in approved if d == served), None)
        note = (f"the endpoint {endpoint} serves it" if arn else
                f"the endpoint {endpoint} serves {served}, which no approved package of {registry.group_name(cfg)} "
                "holds: it is the incumbent all the same, since it is what the candidate would replace")
        return Contest(candidate, data, arn, served, note)
    newest = next(approved, None)
    if newest:
        return Contest(candidate, data, *newest, "no endpoint: the newest approved package")
    return Contest(candidate, data, None, None, "no endpoint and no approved package: the first model")


def golden_file(args, cfg: Config, s3, work: Path) -> Path:
    if args.golden:
        return Path(args.golden)
    if not cfg.aws.bucket or not golden.stack_golden(s3, cfg):
        raise ConfigError("no golden set: make one with `orchestrate golden --from ...`, or give --golden FILE")
    bucket, key = split_s3(golden.stack_prefix(cfg) + golden.GOLDEN_FILE)
    s3.download_file(bucket, key, str(work / golden.GOLDEN_FILE))
    return work / golden.GOLDEN_FILE


def scores(args, cfg: Config, sess, sm, image: str, models: dict[str, str]) -> tuple[str, int, dict[str, Score]]:
    """(golden sha256, golden bins, {name: score}) of each model data URI in ``models``."""
    s3 = aws.client(sess, "s3")
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    with tempfile.TemporaryDirectory(prefix="orchestrate-promote-") as tmp:
        path = golden_file(args, cfg, s3, Path(tmp))
        labels = [g for g in read_labels(path).values() if g.count is not None]
        sha = digest(path)
        cache = golden_audit.ScoreCache(args.scores or (golden.stack_prefix(cfg) + "scores" if cfg.aws.bucket
                                                        else "promote/scores"), s3)
        found = {}
        for name, data in models.items():
            key = golden_audit.cache_key(sha, data)
            found[name] = cache.get(key)
            if found[name] is not None:
                print(f"{name}: scored on this golden set before ({key})")
                continue
            rows, card = golden_audit.answers(clients, sm, cfg, labels, data, image, Path(tmp) / name, args.local)
            found[name] = score(rows, {g.bin_id: g.count for g in labels}, card)
            cache.put(key, found[name])
    return sha, len(labels), found


def decide(found: dict[str, Score], card: ModelCard, cfg: Config, force: bool) -> decision.Decision:
    if "incumbent" not in found:
        return decision.first(found["candidate"], card, force)
    return decision.against(found["candidate"], found["incumbent"], cfg.review.promote_alpha, force)


def release(sess, sm, cfg: Config, image: str, c: Contest, made: decision.Decision, sha: str, won: Score,
            deploy: bool) -> str:
    """The package Approved (and the endpoint and monitor onto it) or Rejected; what was done."""
    golden_meta = {"golden_sha256": sha, "golden_n": str(won.n), "golden_accuracy": f"{won.accuracy:.4f}",
                   "golden_rmse": f"{won.rmse:.4f}", "golden_auto_share": f"{won.auto_share:.4f}"}
    if not made.approve:
        registry.decide(sm, c.candidate, registry.REJECTED, made.description, golden_meta)
        return f"refused (the package is now Rejected): {made.why} (--force approves anyway, and says so)"
    registry.decide(sm, c.candidate, registry.APPROVED, made.description, golden_meta)
    said = f"approved: {made.description}"
    if deploy and endpoint_exists(sm, cfg.deploy.endpoint_name):
        done, before = release_endpoint(sm, aws.client(sess, "application-autoscaling"), aws.client(sess, "scheduler"),
                                        cfg, image, c.candidate_data)
        said += f"\nendpoint {done.endpoint} now serves it ({done.status})"
        if before:
            said += f"; the monitor's schedule judges against it too (it judged against {before})"
    return said


def run(args, cfg: Config, sess) -> int:
    sm, s3 = aws.client(sess, "sagemaker"), aws.client(sess, "s3")
    image = local_image(cfg, "serving") if args.local else image_uri(cfg, aws.client(sess, "ecr"), "serving")
    candidate = register(sm, s3, cfg, image, args.candidate or "")
    c = contest(sm, cfg, candidate, args.local)
    models = {"candidate": c.candidate_data, **({"incumbent": c.incumbent_data} if c.incumbent_data else {})}
    sha, n, found = scores(args, cfg, sess, sm, image, models)
    made = decide(found, read_card(s3, c.candidate_data), cfg, args.force)
    print(f"golden set sha256 {sha}, {n} bins\ncandidate {c.candidate}\n"
          f"incumbent {c.incumbent or c.incumbent_data or '(none)'} ({c.note})")
    print("\n".join(decision.table(found)))
    print(release(sess, sm, cfg, image, c, made, sha, found["candidate"], not args.no_deploy and not args.local))
    return 0 if made.approve else DECLINED

