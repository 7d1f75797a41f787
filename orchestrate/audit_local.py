"""``orchestrate audit --local``: the whole audit on this machine, the transform run by the
SageMaker SDK's local mode (``orchestrate.local_transform``) on our serving image.

Photos: a local folder (its top level), or an S3 prefix / manifest / file list / id
list, whose photos are downloaded into a temporary folder first (the SDK's local mode
reads no manifests). Expected quantities: ``--metadata`` (a folder or S3 prefix of ABID
JSONs; default: the ``metadata`` folder beside the photos' folder) or ``--expected`` CSV.
The model: ``--model-data``, a model folder or a model.tar.gz. Outputs and the report
go to ``--out``; the serving container's log to ``<out>/transform.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from bincounter.modelcard import ModelCard
from orchestrate import audit_join, costs, local_mode, local_transform, manifest
from orchestrate.audit import expected_quantities, report, resolve_inputs
from orchestrate.audit_join import Store
from orchestrate.aws import s3_for, unique_name
from orchestrate.config import Config, ConfigError
from orchestrate.progress import Progress

log = logging.getLogger(__name__)


def _photos_folder(a, cfg: Config, clients, tmp: Path) -> Path:
    """A local folder holding the photos at its top level: the user's, or the photos a cloud
    audit would read (``audit.resolve_inputs``) downloaded."""
    if a.images and not a.images.startswith("s3://"):
        return Path(a.images)
    if not (a.images or a.manifest or a.file_list or a.ids):
        raise ConfigError("say which photos: --images DIR (or s3://...), --manifest, --file-list or --ids")
    s3, public_s3 = clients()
    inputs = resolve_inputs(a, cfg, s3, public_s3)
    if not a.metadata and not a.expected:
        a.metadata = inputs.metadata
    photos = inputs.photos
    client = s3_for(manifest.split_s3(photos.prefix)[0], s3, public_s3, cfg.data.source_bucket)
    log.info("downloading %d photos from %s for the local run", len(photos.keys), photos.prefix)
    return local_transform.materialize(client, photos, tmp / "photos")


def _run_sdk(cfg: Config, job: str, image: str, model_dir: Path, folder: Path, outputs: Path, tmp: Path,
             out: Path, bar: Progress) -> local_transform.LocalRun:
    sess = local_transform.local_session(cfg.aws.region, container_root=tmp / "work")
    with (open(out / "transform.log", "w", encoding="utf-8") as container_log,
          contextlib.redirect_stdout(container_log)):  # the SDK prints the container's log
        return local_transform.run_local(
            sess, job=job, image=image, model_dir=model_dir, input_uri=folder.resolve().as_uri(),
            output_uri=outputs.resolve().as_uri(), content_type=cfg.audit.content_type,
            on_count=bar.advance_to)


def run(a, cfg: Config, image: str, clients: Callable[[], tuple]) -> dict[str, Path]:
    """``clients()`` -> (s3, public_s3), called only when photos, metadata or the CSV are in S3."""
    price = cfg.costs.hourly(cfg.audit.instance_type)
    if not a.model_data:  # before any photo is downloaded
        raise ConfigError("--model-data: a model folder (model.json + model.onnx) or a model.tar.gz")
    out = Path(a.out or Path("audit") / unique_name("local", "audit"))
    out.mkdir(parents=True, exist_ok=True)
    job = unique_name(cfg.aws.stack, "audit")
    with tempfile.TemporaryDirectory(prefix="orchestrate-audit-") as tmp:
        tmp = Path(tmp)
        folder = _photos_folder(a, cfg, clients, tmp)
        photos = local_transform.top_level_photos(folder)
        ids = audit_join.photo_ids([p.name for p in photos])
        model_dir = local_mode.model_dir(Path(a.model_data), tmp)
        card = ModelCard.read(model_dir)
        if not a.metadata and not a.expected and (folder.parent / "metadata").is_dir():
            a.metadata = str(folder.parent / "metadata")  # the ABID layout: images/ beside metadata/
        outputs = out / "outputs"
        shutil.rmtree(outputs, ignore_errors=True)  # an earlier run's outputs must not be joined
        with Progress(len(photos), f"local transform {job}") as bar:
            if a.endpoint:  # a serving container already running in batch mode (compose)
                done = local_transform.run_attached(a.endpoint.rstrip("/"), photos, outputs,
                                                    cfg.audit.content_type, bar.advance_to)
            else:
                done = _run_sdk(cfg, job, image, model_dir, folder, outputs, tmp, out, bar)
            bar.advance_to(len(photos))
    in_s3 = any((x or "").startswith("s3://") for x in (a.metadata, a.expected))
    s3, public_s3 = clients() if in_s3 else (None, None)
    expected, reasons = expected_quantities(a, ids, a.metadata or "", s3, public_s3, cfg.data.source_bucket,
                                            cfg.data.workers)
    rows = audit_join.join(ids, audit_join.read_outputs(Store(str(outputs))), expected, card, reasons)
    cost = costs.Cost(done.seconds, price,
                             f"1 x this machine ({os.cpu_count()} CPUs) standing in for one "
                             f"{cfg.audit.instance_type}", len(ids))
    how = (f"the serving container at {a.endpoint}" if a.endpoint
           else f"SageMaker SDK local mode, image `{image}`")
    facts = [f"- local transform `{job}` ({how}): {done.description['TransformJobStatus']} in {done.seconds:.1f} s",
             f"- photos: {a.images or a.manifest or a.file_list or a.ids} ({len(ids):,})",
             f"- model: {a.model_data}", f"- outputs: {outputs}"]
    return report(rows, out, f"Audit {job} (local)", facts, card, cost, cfg.audit.recount_rows)
