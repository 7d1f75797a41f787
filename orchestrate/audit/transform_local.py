"""A transform job on this machine: the SageMaker SDK's own local mode, and what it lacks.

``run_local`` hands CreateModel / CreateTransformJob to ``LocalSession``'s
client (``sagemaker.core.local``), which starts our serving image with
``docker compose``, asks ``/execution-parameters``, sets ``SAGEMAKER_BATCH`` and
the payload and strategy variables, posts every record and writes
``<input>.out`` files, as Batch Transform does.

What the SDK's local mode (sagemaker 3.27) lacks, and what we do about it:

* ManifestFile input: it reads the manifest object itself as the one record.
  ``materialize`` downloads the objects a manifest names into a folder first.
* Only the top level of a folder: files in subfolders are never sent.
  ``top_level_photos`` refuses such a folder instead of auditing part of it.
* One container, one request at a time (MaxConcurrentTransforms is forced to
  1), so with the image's defaults one worker computes while the others idle.
  ``SINGLE_STREAM`` gives that one stream every core (one worker, one ONNX Runtime
  thread per CPU): 1.51x the defaults on the fp32 graph and 1.24x on int8 on a
  quiet machine (``make bench-audit``, 2026-12-03, load 1.2-1.9), though 0.55-0.63x
  beside other work (load 4-11, 2026-11-30); ``orchestrate audit --local`` uses it.
  ``run_attached`` (below) sends MaxConcurrentTransforms requests at once.
* The documented ``/execution-parameters`` answer ``"BatchStrategy":
  "MULTI_RECORD"`` is copied into its request and then rejected ("Invalid Batch
  Strategy"): the strategy is always passed in the API's spelling.
* An ``s3://`` output path gets the job name appended (the service does not):
  outputs are looked for under the whole output path.
* It waits 5 s between health checks and reports no progress: a thread counts
  the ``.out`` files in its working folder for a progress bar.
* Its serving container publishes ``local.serving_port`` (8080 by default) on
  every interface: we pick a free port.
* A non-2xx answer is written into the output like any other (the service
  writes nothing and fails the job); batch mode answers 200 anyway.
* Telemetry, credentials and signals as for every local-mode command
  (docs/platform.md §7): the session is ``orchestrate.local_mode.sdk_session``'s
  (telemetry off, dummy keys), the job runs under its ``stoppable`` (SIGTERM /
  Ctrl-C stop compose, hence the container), and ``run_local`` also checks the
  job's status (the SDK's wrapper would return from a swallowed interrupt as if done).
* It cannot run inside a container without the Docker socket (compose's
  ``audit`` profile): ``run_attached`` drives an already running serving
  container the same way (execution parameters, one photo per request, up to
  MaxConcurrentTransforms at once, ``<photo>.out`` written only for a 2xx).
* It never removes its serving container, and leaves it running when the job
  fails (e.g. on that strategy): ``run_local`` removes the containers of the
  compose projects made in its working folder (found by their compose working-dir
  label: after a clean run the SDK has already deleted the compose file itself).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from orchestrate.local.sdk import remove_containers, sdk_session, stoppable
from orchestrate.core.store import split_s3
from orchestrate.data.manifest import IMAGE_SUFFIXES, Manifest

log = logging.getLogger(__name__)


class LocalTransformError(RuntimeError):
    """A local transform that cannot run as asked."""


@dataclass(frozen=True)
class LocalRun:
    job: str
    seconds: float       # CreateTransformJob call: container start, every record, container stop
    output_uri: str      # where the .out files are (an s3:// output path gets the job name appended)
    description: dict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_session(region: str, container_root: str | Path | None = None):
    """Local mode's one LocalSession, its serving container on a free port and its working
    files under ``container_root`` (ours alone: what the SDK leaves there is ours to remove).
    S3 inputs and outputs reach whatever ``AWS_ENDPOINT_URL`` names, like every boto3 client."""

    sess = sdk_session(region)
    root = Path(container_root or tempfile.mkdtemp(prefix="orchestrate-local-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    sess.config = {"local": {"serving_port": _free_port(), "container_root": str(root)}}
    return sess


def top_level_photos(folder: Path) -> list[Path]:
    """The photos the SDK will send: the folder's own files, never its subfolders'."""
    if not folder.is_dir():
        raise LocalTransformError(f"{folder} is not a folder")
    nested = [p for p in folder.rglob("*") if p.parent != folder and p.suffix.lower() in IMAGE_SUFFIXES]
    if nested:
        raise LocalTransformError(
            f"{len(nested)} photos sit in subfolders of {folder} (e.g. {nested[0]}): the SDK's local mode "
            "sends only the folder's top-level files; audit each folder on its own")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise LocalTransformError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return photos


def materialize(s3, manifest: Manifest, folder: Path, workers: int = 16) -> Path:
    """The objects a manifest names, downloaded flat into ``folder`` (the SDK cannot read manifests)."""
    from concurrent.futures import ThreadPoolExecutor

    bucket, prefix = split_s3(manifest.prefix)
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda k: s3.download_file(bucket, prefix + k, str(folder / Path(k).name)), manifest.keys))
    return folder


def _count_outputs(root: Path, stop: threading.Event, on_count: Callable[[int], None]) -> None:
    while not stop.wait(1.0):
        on_count(sum(1 for _ in root.rglob("*.out")))


def single_stream(cpus: int | None = None) -> dict[str, str]:
    """The serving container's environment for the SDK's one request at a time: one worker,
    one ONNX Runtime thread per CPU of this machine (the container sees them all)."""
    return {"MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_INTRA_OP_THREADS": str(cpus or len(os.sched_getaffinity(0)))}


def run_local(sess, *, job: str, image: str, model_dir: Path, input_uri: str, output_uri: str,
              content_type: str = "image/jpeg", max_payload_mb: int | None = None,
              environment: dict | None = None, on_count: Callable[[int], None] | None = None) -> LocalRun:
    """CreateModel + CreateTransformJob through the SDK's local client; returns when it is done.

    ``input_uri``: ``file://`` folder or ``s3://`` prefix (photos at its top level);
    ``output_uri``: ``file://`` folder or ``s3://`` prefix.
    """

    client = sess.sagemaker_client
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "model.json").is_file():
        raise LocalTransformError(f"{model_dir} holds no model.json (a model folder is needed locally)")
    # the SDK needs the Environment key even empty; empty = the image's own defaults
    client.create_model(ModelName=f"{job}-model", PrimaryContainer={
        "Image": image, "ModelDataUrl": model_dir.as_uri(), "Environment": dict(environment or {})})
    extra = {} if max_payload_mb is None else {"MaxPayloadInMB": max_payload_mb}
    root = Path(sess.config["local"]["container_root"])  # set by local_session, ours alone
    stop = threading.Event()
    counter = threading.Thread(target=_count_outputs, args=(root, stop, on_count or (lambda n: None)),
                               daemon=True)
    start = time.monotonic()
    counter.start()
    try:
        with stoppable(reap=False):  # SIGTERM / Ctrl-C: compose stops the container, then LocalJobStopped
            client.create_transform_job(
                TransformJobName=job, ModelName=f"{job}-model",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                                "ContentType": content_type, "SplitType": "None"},
                TransformOutput={"S3OutputPath": output_uri, "Accept": "application/json", "AssembleWith": "Line"},
                TransformResources={"InstanceType": "local", "InstanceCount": 1},
                # the API's spelling: the SDK rejects the container's documented "MULTI_RECORD"
                BatchStrategy="MultiRecord", **extra)
    finally:
        stop.set()
        counter.join()
        remove_containers(root)
    seconds = time.monotonic() - start
    description = client.describe_transform_job(TransformJobName=job)
    if description["TransformJobStatus"] != "Completed":  # e.g. Ctrl-C, which the SDK's wrapper swallows
        raise LocalTransformError(f"the SDK's local transform {job} ended {description['TransformJobStatus']}")
    if output_uri.startswith("s3://"):  # the SDK appends the job name; the service does not
        output_uri = output_uri.rstrip("/") + f"/{job}/"
    log.info("local transform %s: %s in %.1f s", job, description["TransformJobStatus"], seconds)
    return LocalRun(job, seconds, output_uri, description)


def run_attached(url: str, photos: list[Path], output_dir: Path, content_type: str = "image/jpeg",
                 on_count: Callable[[int], None] | None = None, timeout: float = 600.0) -> LocalRun:
    """Batch Transform's contract against a serving container already running in batch mode at
    ``url``: ask ``/execution-parameters``, send each photo as one record, up to
    MaxConcurrentTransforms at once, and write ``<photo>.out`` (answer + newline) for a 2xx only."""
    import json
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    with urllib.request.urlopen(f"{url}/execution-parameters", timeout=10) as reply:
        params = json.loads(reply.read())
    output_dir.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []

    def one(photo: Path) -> None:
        req = urllib.request.Request(f"{url}/invocations", data=photo.read_bytes(), method="POST",
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as reply:
                (output_dir / f"{photo.name}.out").write_bytes(reply.read() + b"\n")
        except urllib.error.HTTPError as exc:  # the service writes no output for it either
            failed.append(f"{photo.name}: HTTP {exc.code}")

    start, done = time.monotonic(), 0
    with ThreadPoolExecutor(int(params.get("MaxConcurrentTransforms", 1))) as pool:
        for _ in pool.map(one, photos):
            done += 1
            if on_count:
                on_count(done)
    seconds = time.monotonic() - start
    status = "Failed" if failed else "Completed"
    log.info("attached transform at %s (%s): %s in %.1f s", url, params, status, seconds)
    return LocalRun("attached", seconds, output_dir.as_uri(),
                    {"TransformJobStatus": status, "ExecutionParameters": params, "FailedRecords": failed})
