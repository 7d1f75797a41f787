"""The audit's run step in the cloud: one Batch Transform job of our serving image over the
photos, read in place (``run``), or a job made earlier joined again (``attach``). Either
returns the ``Transformed`` the join takes, as the local run step does.

One S3 object is one record (``image/jpeg``, SplitType None); MaxConcurrentTransforms,
MaxPayloadInMB and BatchStrategy are sent only when configured, otherwise SageMaker takes
the container's ``/execution-parameters``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bincounter.modelcard import MODEL_JSON, ModelCard
from orchestrate.audit.inputs import Photos, Request
from orchestrate.audit.join import AuditError, Transformed
from orchestrate.core import costs
from orchestrate.core.aws import S3Clients, is_ours, tags, unique_name
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.progress import Progress
from orchestrate.core.store import Store, split_s3, tar_members
from orchestrate.data import manifest
from orchestrate.endpoint.deploy import latest_model_data

log = logging.getLogger(__name__)

ACCEPT = "application/json"
STRATEGIES = ("SingleRecord", "MultiRecord")
TERMINAL = {"Completed", "Failed", "Stopped"}
# the progress bar counts output objects with LIST requests (1,000 keys each); a whole
# bucket's audit (535,234 photos) is 536 of them per count, so counts are spaced to stay
# within this many LIST requests an hour ($0.03 at S3's $0.005 per 1,000)
LIST_REQUESTS_PER_HOUR = 6000


def model_request(cfg: Config, name: str, image: str, model_data: str) -> dict:
    # Environment may stay empty, but the SDK's local mode needs the key
    return {"ModelName": name, "ExecutionRoleArn": cfg.require("aws", "role_arn"),
            "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data, "Environment": {}},
            "Tags": tags(cfg.aws.stack)}


def transform_request(cfg: Config, job: str, model: str, photos: Photos, uri: str, output_uri: str) -> dict:
    """CreateTransformJob: photos read in place, one object per record, tagged for teardown/report."""
    c = cfg.audit
    if c.batch_strategy and c.batch_strategy not in STRATEGIES:
        raise ConfigError(f"audit.batch_strategy={c.batch_strategy!r}: use {' or '.join(STRATEGIES)}, or "
                          "leave it empty for the container's answer")
    req = {"TransformJobName": job, "ModelName": model,
           "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": photos.data_type, "S3Uri": uri}},
                              "ContentType": c.content_type, "SplitType": "None", "CompressionType": "None"},
           "TransformOutput": {"S3OutputPath": output_uri, "Accept": ACCEPT, "AssembleWith": "Line"},
           "TransformResources": {"InstanceType": c.instance_type, "InstanceCount": c.instance_count},
           "ModelClientConfig": {"InvocationsTimeoutInSeconds": c.invocations_timeout},
           # the server's own per-request limit follows the job's
           "Environment": {"MODEL_SERVER_TIMEOUT": str(c.invocations_timeout)},
           "Tags": tags(cfg.aws.stack)}
    for key, value in (("MaxConcurrentTransforms", c.max_concurrent_transforms),
                       ("MaxPayloadInMB", c.max_payload_mb), ("BatchStrategy", c.batch_strategy)):
        if value:  # unset: SageMaker asks the container's /execution-parameters
            req[key] = value
    return req


def find_model(sm, stack: str, image: str, model_data: str) -> str | None:
    """A model of this stack serving ``image`` on ``model_data`` (made by an earlier audit or deploy)."""
    for page in sm.get_paginator("list_models").paginate(NameContains=stack):
        for m in page["Models"]:
            desc = sm.describe_model(ModelName=m["ModelName"])
            pc = desc.get("PrimaryContainer", {})
            if ((pc.get("Image"), pc.get("ModelDataUrl")) == (image, model_data)
                    and is_ours(sm.list_tags(ResourceArn=m["ModelArn"]).get("Tags", []), stack)):
                return m["ModelName"]
    return None


def read_card(s3, model_data: str) -> ModelCard:
    """model.json out of a model.tar.gz in S3 (streamed; nothing else is kept)."""
    found = tar_members(model_data, {MODEL_JSON}, s3)
    if MODEL_JSON not in found:
        raise AuditError(f"{model_data} holds no {MODEL_JSON}")
    return ModelCard.from_dict(json.loads(found[MODEL_JSON]))


def count_interval(total: int, poll: float) -> float:
    """Seconds between counts of the outputs: every poll, unless listing ``total`` outputs
    that often would exceed ``LIST_REQUESTS_PER_HOUR``."""
    pages = -(-total // 1000)
    return max(poll, pages * 3600 / LIST_REQUESTS_PER_HOUR)


def wait(sm, outputs: Store, job: str, total: int, timeout: float, poll: float) -> dict:
    """Poll the job; the bar counts the ``.out`` objects written so far, every
    ``count_interval`` seconds (the job's status is asked every ``poll``)."""
    start, counted = time.monotonic(), None
    every = count_interval(total, poll)
    with Progress(total, f"transform {job}") as bar:
        while True:
            desc = sm.describe_transform_job(TransformJobName=job)
            finished = desc["TransformJobStatus"] in TERMINAL
            if finished or counted is None or time.monotonic() - counted >= every:
                counted = time.monotonic()
                bar.advance_to(min(total, sum(k.endswith(".out") for k in outputs.keys())))
            if finished:
                return desc
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"transform job {job} still {desc['TransformJobStatus']} after {timeout:.0f} s "
                                   f"(it goes on; join it later with --job {job})")
            time.sleep(poll)


@dataclass(frozen=True)
class Plan:
    """The job a cloud audit starts: its name, where it writes, and the two requests."""

    job: str
    base: str         # s3://BUCKET/PREFIX/audit/JOB: built manifests and outputs go under it
    uri: str          # what the job reads
    output_uri: str
    model_data: str
    model: dict       # CreateModel, unless a model of this stack already serves image + model_data
    transform: dict   # CreateTransformJob

    def dry_run(self, photos: Photos) -> str:
        """What ``run`` would send, as JSON."""
        uploads = {n: f"{self.base}/{n}.manifest ({len(m.keys):,} keys)" for n, m in photos.built.items()}
        return json.dumps({"PutObject": uploads, "CreateModel (unless one exists)": self.model,
                           "CreateTransformJob": self.transform}, indent=1, default=str)


def plan(sm, cfg: Config, req: Request, photos: Photos, image: str) -> Plan:
    """Checked before anything is created: the price of the instance type, the photos' region."""
    cfg.costs.hourly(cfg.audit.instance_type)  # a missing price fails here, not after the job
    manifest.check_region(photos.listed, cfg.data.source_bucket, cfg.data.source_region, cfg.aws.region)
    model_data = req.model_data or _latest_model_data(sm, cfg.aws.stack)
    job = unique_name(cfg.aws.stack, "audit")
    base = f"{cfg.s3_base}/audit/{job}"
    uri, output_uri = (f"{base}/images.manifest" if photos.built else photos.uri), f"{base}/output/"
    return Plan(job, base, uri, output_uri, model_data,
                model_request(cfg, unique_name(cfg.aws.stack, "model"), image, model_data),
                transform_request(cfg, job, "(the model above, or an existing one)", photos, uri, output_uri))


def run(sm, clients: S3Clients, cfg: Config, req: Request, photos: Photos, planned: Plan) -> Transformed:
    """Upload built manifests, create (or reuse) the model, start the job, wait for it."""
    if photos.built:
        bucket, key = split_s3(planned.base)
        manifest.upload(clients.signed, photos.built, bucket, key)
    model = find_model(sm, cfg.aws.stack, planned.model["PrimaryContainer"]["Image"], planned.model_data)
    if model is None:
        sm.create_model(**planned.model)
        model = planned.model["ModelName"]
    sm.create_transform_job(**{**planned.transform, "ModelName": model})
    log.info("transform job %s: %d photos, model %s (%s)", planned.job, photos.count, model, planned.model_data)
    return _finished(sm, clients, cfg, req, photos, planned.job, planned.uri, planned.model_data, planned.output_uri)


def attach(sm, clients: S3Clients, cfg: Config, req: Request, photos: Photos) -> Transformed:
    """``--job``: the transform job made earlier, waited for if it still runs."""
    desc = sm.describe_transform_job(TransformJobName=req.job)
    model_data = sm.describe_model(ModelName=desc["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
    return _finished(sm, clients, cfg, req, photos, req.job, photos.uri,
                     model_data, desc["TransformOutput"]["S3OutputPath"])


def _finished(sm, clients: S3Clients, cfg: Config, req: Request, photos: Photos, job: str, uri: str,
              model_data: str, output_uri: str) -> Transformed:
    outputs = Store(output_uri, clients.signed)
    desc = wait(sm, outputs, job, photos.count, cfg.audit.wait_seconds, req.poll_seconds)
    status = desc["TransformJobStatus"] + (f" ({desc['FailureReason']})" if desc.get("FailureReason") else "")
    facts = (f"- transform job `{job}`: {status}", f"- photos: {uri or photos.listed.prefix} ({photos.count:,})",
             f"- model: {model_data}", f"- outputs: {output_uri}")
    cost = costs.job_cost(desc, cfg.costs.hourly(desc["TransformResources"]["InstanceType"]), photos.count)
    return Transformed(job, photos.listed.keys, outputs, read_card(clients.signed, model_data), facts, cost,
                       f"Audit {job}", Path(req.out or Path("audit") / job))


def _latest_model_data(sm, stack: str) -> str:
    job, model_data = latest_model_data(sm, stack)
    log.info("auditing with the model of %s", job)
    return model_data
