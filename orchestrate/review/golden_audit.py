"""A model's answers on the golden set, by the audit's own steps: inputs (the golden photos
and their asked quantities) -> run (a Batch Transform job; the SDK's local transform with
``--local``) -> join. Scores are kept by golden hash and model, so a model already scored on
this golden set is not scored again."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from bincounter.modelcard import ModelCard
from bincounter.reviews import HumanLabel
from orchestrate.audit import inputs, join, run_cloud, run_local
from orchestrate.audit.join import Row
from orchestrate.core.aws import S3Clients
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.store import split_s3
from orchestrate.data.manifest import Manifest
from orchestrate.review.scoring import Score


def _expected_csv(labels: list[HumanLabel]) -> str:
    """Each bin asked its golden count: the join wants a quantity; the score asks every count
    itself from the kept probabilities (``scoring``)."""
    lines = ["bin_id,expected_quantity"] + [f"{g.bin_id},{g.count}" for g in labels]
    return "\n".join(lines) + "\n"


def answers(clients: S3Clients, sm, cfg: Config, labels: list[HumanLabel], model_data: str, image: str,
            work: Path, local: bool) -> tuple[list[Row], ModelCard]:
    """Every golden bin through the model ``model_data``, its probabilities kept; (rows, the
    model's card)."""
    work.mkdir(parents=True, exist_ok=True)
    if local:
        folder = work / "photos"
        folder.mkdir(exist_ok=True)
        for g in labels:
            target = folder / Path(g.source_ref).name
            if g.source_ref.startswith("s3://"):
                bucket, key = split_s3(g.source_ref)
                clients.for_uri(g.source_ref).download_file(bucket, key, str(target))
            else:
                shutil.copy(g.source_ref, target)
        model = model_data
        if model_data.startswith("s3://"):
            bucket, key = split_s3(model_data)
            model = str(work / "model.tar.gz")
            clients.for_uri(model_data).download_file(bucket, key, model)
        (work / "expected.csv").write_text(_expected_csv(labels))
        req = inputs.Request(images=str(folder), expected=str(work / "expected.csv"), model_data=model,
                             out=str(work / "audit"), local=True)
        done = run_local.run(clients, cfg, req, inputs.resolve(req, cfg, clients), image)
    else:
        buckets = {split_s3(g.source_ref)[0] for g in labels if g.source_ref.startswith("s3://")}
        if len(buckets) != 1 or any(not g.source_ref.startswith("s3://") for g in labels):
            raise ConfigError("a cloud golden run reads the golden photos in place: all in one s3:// bucket "
                              "(or score with --local)")
        bucket = buckets.pop()
        base = f"{cfg.s3_base}/{cfg.review.golden_prefix.strip('/')}/runs/{work.name}"
        photos = Manifest(f"s3://{bucket}/", tuple(split_s3(g.source_ref)[1] for g in labels))
        for name, body in (("photos.manifest", photos.to_json()), ("expected.csv", _expected_csv(labels))):
            b, k = split_s3(f"{base}/{name}")
            clients.signed.put_object(Bucket=b, Key=k, Body=body.encode())
        req = inputs.Request(manifest=f"{base}/photos.manifest", expected=f"{base}/expected.csv",
                             model_data=model_data, out=str(work / "audit"))
        photos_in = inputs.resolve(req, cfg, clients)
        done = run_cloud.run(sm, clients, cfg, req, photos_in, run_cloud.plan(sm, cfg, req, photos_in, image))
    return join.rows(done, req.expected, "", clients, cfg.data.workers, keep_probabilities=True), done.card


def cache_key(golden_sha: str, model_data: str) -> str:
    """Where a model's score on a golden set is kept (v2: asks by bincounter.verification)."""
    return f"{golden_sha[:16]}/v2-{hashlib.sha256(model_data.encode()).hexdigest()[:16]}.json"


class ScoreCache:
    """Scores by golden hash and model: a folder, or the stack's golden prefix in S3."""

    def __init__(self, where: str, s3=None):
        self.where, self.s3 = where.rstrip("/"), s3

    def get(self, key: str) -> Score | None:
        if self.where.startswith("s3://"):
            bucket, k = split_s3(f"{self.where}/{key}")
            try:
                return Score.from_dict(json.loads(self.s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
            except self.s3.exceptions.NoSuchKey:
                return None
        path = Path(self.where) / key
        return Score.from_dict(json.loads(path.read_text())) if path.is_file() else None

    def put(self, key: str, score: Score) -> None:
        body = json.dumps(score.to_dict(), indent=1)
        if self.where.startswith("s3://"):
            bucket, k = split_s3(f"{self.where}/{key}")
            self.s3.put_object(Bucket=bucket, Key=k, Body=body.encode())
            return
        path = Path(self.where) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
