"""The audit's run step on this machine: the transform by the SageMaker SDK's local mode on
our serving image, or by a serving container already running in batch mode (``--endpoint``,
compose's audit profile). Returns the ``Transformed`` the join takes, as the cloud's does.

The SDK's local mode reads no manifests and only a folder's top level, so photos in S3
(a prefix, a manifest, a file list, an id list) are downloaded into a temporary folder
first. The model: a model folder or a model.tar.gz. Outputs go to ``<out>/outputs``, the
serving container's log to ``<out>/transform.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from bincounter.modelcard import ModelCard
from orchestrate.audit import transform_local
from orchestrate.audit.inputs import Photos, Request
from orchestrate.audit.join import Transformed
from orchestrate.core import costs
from orchestrate.core.aws import S3Clients, unique_name
from orchestrate.core.config import Config
from orchestrate.core.progress import Progress
from orchestrate.core.store import Store
from orchestrate.local import sdk

log = logging.getLogger(__name__)


def photos_folder(photos: Photos, clients: S3Clients, tmp: Path) -> Path:
    """A local folder holding the photos at its top level: the user's, or the photos in S3
    (what a cloud audit would read) downloaded into ``tmp``."""
    if photos.folder is not None:
        return photos.folder
    listed = photos.listed
    log.info("downloading %d photos from %s for the local run", len(listed.keys), listed.prefix)
    return transform_local.materialize(clients.for_uri(listed.prefix), listed, tmp / "photos")


def _sdk_transform(cfg: Config, job: str, image: str, model_dir: Path, folder: Path, outputs: Path, tmp: Path,
                   out: Path, bar: Progress) -> transform_local.LocalRun:
    sess = transform_local.local_session(cfg.aws.region, container_root=tmp / "work")
    with (open(out / "transform.log", "w", encoding="utf-8") as container_log,
          contextlib.redirect_stdout(container_log)):  # the SDK prints the container's log
        return transform_local.run_local(
            sess, job=job, image=image, model_dir=model_dir, input_uri=folder.resolve().as_uri(),
            output_uri=outputs.resolve().as_uri(), content_type=cfg.audit.content_type,
            environment=transform_local.single_stream(), on_count=bar.advance_to)


def run(clients: S3Clients, cfg: Config, req: Request, photos: Photos, image: str) -> Transformed:
    """Every photo through the serving image here; the cost is this machine's time priced as
    one ``audit.instance_type``."""
    price = cfg.costs.hourly(cfg.audit.instance_type)
    out = Path(req.out or Path("audit") / unique_name("local", "audit"))
    out.mkdir(parents=True, exist_ok=True)
    job = unique_name(cfg.aws.stack, "audit")
    outputs = out / "outputs"
    with tempfile.TemporaryDirectory(prefix="orchestrate-audit-") as tmp:
        tmp = Path(tmp)
        folder = photos_folder(photos, clients, tmp)
        sent = transform_local.top_level_photos(folder)
        model_dir = sdk.model_dir(Path(req.model_data), tmp)
        card = ModelCard.read(model_dir)
        shutil.rmtree(outputs, ignore_errors=True)  # an earlier run's outputs must not be joined
        with Progress(len(sent), f"local transform {job}") as bar:
            if req.endpoint:
                done = transform_local.run_attached(req.endpoint.rstrip("/"), sent, outputs,
                                                    cfg.audit.content_type, bar.advance_to)
            else:
                done = _sdk_transform(cfg, job, image, model_dir, folder, outputs, tmp, out, bar)
            bar.advance_to(len(sent))
    cost = costs.Cost(done.seconds, price, f"1 x this machine ({os.cpu_count()} CPUs) standing in for one "
                      f"{cfg.audit.instance_type}", len(sent))
    how = (f"the serving container at {req.endpoint}" if req.endpoint
           else f"SageMaker SDK local mode, image `{image}`, one worker x "
                f"{transform_local.single_stream()['MODEL_SERVER_INTRA_OP_THREADS']} ONNX Runtime threads")
    facts = (f"- local transform `{job}` ({how}): {done.description['TransformJobStatus']} in {done.seconds:.1f} s",
             f"- photos: {req.named} ({len(sent):,})", f"- model: {req.model_data}", f"- outputs: {outputs}")
    return Transformed(job, tuple(p.name for p in sent), Store(str(outputs)), card, facts, cost,
                       f"Audit {job} (local)", out)
