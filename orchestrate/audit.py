"""``orchestrate audit``: every bin photo under an S3 prefix or manifest counted by one Batch
Transform job of our serving image, joined with the expected quantities, and the bins to
recount first.

Photos and metadata are read in place (a prefix, a manifest, or manifests built from a
Udacity file list or an id list over the public bucket). One S3 object is one record
(``image/jpeg``, SplitType None); MaxConcurrentTransforms, MaxPayloadInMB and
BatchStrategy are sent only when configured, otherwise SageMaker takes the container's
``/execution-parameters``. ``--local`` runs the same transform with the SageMaker SDK's
local mode (``orchestrate.local_transform``); ``--job`` joins an existing job again.
"""

from __future__ import annotations

import json
import logging
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bincounter.modelcard import MODEL_JSON, ModelCard
from orchestrate import audit_join, audit_report, costs, manifest
from orchestrate.audit_join import AuditError, Store
from orchestrate.aws import is_ours, s3_for, tags, unique_name
from orchestrate.config import Config, ConfigError
from orchestrate.data import read_file_list
from orchestrate.progress import Progress

log = logging.getLogger(__name__)

ACCEPT = "application/json"
STRATEGIES = ("SingleRecord", "MultiRecord")
TERMINAL = {"Completed", "Failed", "Stopped"}
# the progress bar counts output objects with LIST requests (1,000 keys each); a whole
# bucket's audit (535,234 photos) is 536 of them per count, so counts are spaced to stay
# within this many LIST requests an hour ($0.03 at S3's $0.005 per 1,000)
LIST_REQUESTS_PER_HOUR = 6000


@dataclass
class Inputs:
    """The photos (for the join), what the job reads, and where their metadata is."""
    photos: manifest.Manifest
    uri: str
    data_type: str  # S3Prefix | ManifestFile
    metadata: str = ""
    built: dict = field(default_factory=dict)  # manifests to upload first (file list / ids)


def sibling_metadata(photos: manifest.Manifest) -> str:
    """The metadata prefix of photos in an ABID ``bin-images/`` prefix, else ""."""
    found = manifest.from_listing(photos).get("metadata")
    return found.prefix if found else ""


def resolve_inputs(a, cfg: Config, s3, public_s3) -> Inputs:
    """From --file-list / --ids (manifests over the source bucket), --manifest or --images."""
    if a.file_list or a.ids:
        ids = read_file_list(a.file_list) if a.file_list else manifest.read_id_list(a.ids)
        built = manifest.build(cfg.data.source_bucket, ids)
        return Inputs(built["images"], "", "ManifestFile", built["metadata"].prefix,
                      {"images": built["images"], "metadata": built["metadata"]})
    if a.manifest:
        photos = manifest.read(s3, a.manifest)
        return Inputs(photos, a.manifest, "ManifestFile", sibling_metadata(photos))
    if not a.images:
        raise ConfigError("say which photos: --images s3://bucket/prefix/, --manifest, --file-list or --ids")
    bucket = manifest.split_s3(a.images)[0]
    photos = manifest.list_images(s3_for(bucket, s3, public_s3, cfg.data.source_bucket), a.images)
    return Inputs(photos, photos.prefix, "S3Prefix", sibling_metadata(photos))


def model_request(cfg: Config, name: str, image: str, model_data: str) -> dict:
    # Environment may stay empty, but the SDK's local mode needs the key
    return {"ModelName": name, "ExecutionRoleArn": cfg.require("aws", "role_arn"),
            "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data, "Environment": {}},
            "Tags": tags(cfg.aws.stack)}


def transform_request(cfg: Config, job: str, model: str, inputs: Inputs, output_uri: str) -> dict:
    """CreateTransformJob: photos read in place, one object per record, tagged for teardown/report."""
    c = cfg.audit
    if c.batch_strategy and c.batch_strategy not in STRATEGIES:
        raise ConfigError(f"audit.batch_strategy={c.batch_strategy!r}: use {' or '.join(STRATEGIES)}, or "
                          "leave it empty for the container's answer")
    req = {"TransformJobName": job, "ModelName": model,
           "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": inputs.data_type, "S3Uri": inputs.uri}},
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
    bucket, key = manifest.split_s3(model_data)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with tarfile.open(fileobj=body, mode="r|gz") as tar:
        for member in tar:
            if member.isfile() and PurePosixPath(member.name).name == MODEL_JSON:
                return ModelCard.from_dict(json.load(tar.extractfile(member)))
    raise AuditError(f"{model_data} holds no {MODEL_JSON}")


def expected_quantities(a, ids: list[str], metadata: str, s3, public_s3, source_bucket: str,
                        workers: int) -> tuple[dict, dict]:
    """(expected by id, reason by id where there is none): --expected CSV, else metadata JSONs."""
    if a.expected:
        src = a.expected
        if src.startswith("s3://"):
            bucket, key = manifest.split_s3(src)
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        else:
            text = Path(src).read_text(encoding="utf-8")
        expected = audit_join.read_expected_csv(text, src)
        return expected, {i: f"not in {src}" for i in ids if i not in expected}
    metadata = a.metadata or metadata
    if not metadata:
        log.warning("no expected quantities (give --metadata or --expected): every bin is reported as such")
        return {}, {i: "no --metadata or --expected given" for i in ids}
    bucket = manifest.split_s3(metadata)[0] if metadata.startswith("s3://") else ""  # a folder needs no client
    client = s3_for(bucket, s3, public_s3, source_bucket)
    return audit_join.read_expected_metadata(Store(metadata, client), ids, workers)


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


def report(rows, out: Path, title: str, facts: list[str], card: ModelCard, cost,
           limit: int) -> dict[str, Path]:
    paths = audit_report.write(rows, out, title, facts, card, cost, limit)
    print(audit_report.summary(rows, cost, paths))
    return paths


def run(a, cfg: Config, clients: dict, image: str) -> dict:
    """Create (or with --job, find) the transform job, wait, join, report. ``clients``: sagemaker,
    s3 (signed), public_s3 (unsigned, the source bucket's region)."""
    sm, s3, public_s3 = clients["sagemaker"], clients["s3"], clients["public_s3"]
    if a.job:
        desc = sm.describe_transform_job(TransformJobName=a.job)
        src = desc["TransformInput"]["DataSource"]["S3DataSource"]
        a.manifest = src["S3Uri"] if src["S3DataType"] == "ManifestFile" else None
        a.images = None if a.manifest else src["S3Uri"]
        inputs = resolve_inputs(a, cfg, s3, public_s3)
        model_data = sm.describe_model(ModelName=desc["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
        job, output_uri = a.job, desc["TransformOutput"]["S3OutputPath"]
    else:
        inputs = resolve_inputs(a, cfg, s3, public_s3)
        manifest.check_region(inputs.photos, cfg.data.source_bucket, cfg.data.source_region, cfg.aws.region)
        cfg.costs.hourly(cfg.audit.instance_type)  # a missing price fails here, not after the job
        model_data = a.model_data or _latest_model_data(sm, cfg.aws.stack)
        job = unique_name(cfg.aws.stack, "audit")
        base = f"{cfg.s3_base}/audit/{job}"
        output_uri = f"{base}/output/"
        if inputs.built:
            inputs.uri = f"{base}/images.manifest"
        requests = [model_request(cfg, unique_name(cfg.aws.stack, "model"), image, model_data),
                    transform_request(cfg, job, "(the model above, or an existing one)", inputs, output_uri)]
        if a.dry_run:
            uploads = {n: f"{base}/{n}.manifest ({len(m.keys):,} keys)" for n, m in inputs.built.items()}
            print(json.dumps({"PutObject": uploads, "CreateModel (unless one exists)": requests[0],
                              "CreateTransformJob": requests[1]}, indent=1, default=str))
            return {}
        if inputs.built:
            bucket, key = manifest.split_s3(base)
            manifest.upload(s3, inputs.built, bucket, key)
        model = find_model(sm, cfg.aws.stack, image, model_data)
        if model is None:
            sm.create_model(**requests[0])
            model = requests[0]["ModelName"]
        sm.create_transform_job(**{**requests[1], "ModelName": model})
        log.info("transform job %s: %d photos, model %s (%s)", job, len(inputs.photos.keys), model, model_data)
        desc = None
    outputs = Store(output_uri, s3)
    desc = wait(sm, outputs, job, len(inputs.photos.keys), cfg.audit.wait_seconds, a.poll_seconds)
    ids = audit_join.photo_ids(list(inputs.photos.keys))
    expected, reasons = expected_quantities(a, ids, inputs.metadata, s3, public_s3, cfg.data.source_bucket,
                                            cfg.data.workers)
    card = read_card(s3, model_data)
    rows = audit_join.join(ids, audit_join.read_outputs(outputs, cfg.data.workers), expected, card, reasons)
    status = desc["TransformJobStatus"] + (f" ({desc['FailureReason']})" if desc.get("FailureReason") else "")
    facts = [f"- transform job `{job}`: {status}", f"- photos: {inputs.uri or inputs.photos.prefix} "
             f"({len(ids):,})", f"- model: {model_data}", f"- outputs: {output_uri}"]
    cost = costs.job_cost(desc, cfg.costs.hourly(desc["TransformResources"]["InstanceType"]), len(ids))
    return report(rows, Path(a.out or Path("audit") / job), f"Audit {job}", facts, card, cost,
                  cfg.audit.recount_rows)


def _latest_model_data(sm, stack: str) -> str:
    from orchestrate.deploy import latest_model_data

    job, model_data = latest_model_data(sm, stack)
    log.info("auditing with the model of %s", job)
    return model_data
