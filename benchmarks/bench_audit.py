"""Audit benchmark: Batch Transform throughput of one serving container on the real photos
of ../shared/data/abid-sample, side by side, then projected to the whole bucket.

    python -m benchmarks.bench_audit --image bincounter-serving:latest      # make bench-audit
    python -m benchmarks.bench_audit --photos 0 --instances 1,5,20           # every sample photo

One random-weight ResNet50 (5 classes, 224 px: the production arch; weights do not change
the compute), the same photos, three ways, in one run:

* ``sdk-defaults``: the SageMaker SDK's local transform with the image's own defaults (one
  worker per CPU, one ONNX Runtime thread each). The SDK sends one request at a time, so
  one worker computes and the others idle: the baseline.
* ``sdk-single-stream``: the same, the one stream given every core (one worker, one ONNX
  Runtime thread per CPU): the alternative ``orchestrate audit --local`` measured and
  did not take.
* ``batch-concurrency``: the container with its defaults, sent MaxConcurrentTransforms
  requests at once (its ``/execution-parameters`` answer, one per worker), as Batch
  Transform does on an instance (``orchestrate.audit.transform_local.run_attached``).

img/s is photos over the serving window (first to last request in the container's log for
the SDK runs; the sending loop for the concurrent one); "wall" adds container start and stop.

Projection for N bins on K instances of TYPE: this machine's batch-concurrency img/s per
vCPU x TYPE's vCPUs (the model is compute-bound, one worker per vCPU: assumed to scale
with vCPUs, read from the size: large = 2, xlarge = 4, Nxlarge = 4N) x K (Batch Transform
gives each instance its own share of the objects). Not included: instance start-up (minutes),
S3 reads of the photos, a different CPU generation. Cost = K x hours x the hourly price.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devtools.local_toolkit import ROOT, SAMPLE

SAMPLE_IMAGES = SAMPLE / "images"
ABID_BINS = 535_234
_STAMP = re.compile(r"^(?:\S+\s+\|\s+)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*POST /invocations .*status=200")


def vcpus(instance_type: str) -> int:
    size = instance_type.rsplit(".", 1)[-1]
    if size == "large":
        return 2
    m = re.fullmatch(r"(\d*)xlarge", size)
    if not m:
        raise SystemExit(f"cannot tell the vCPUs of {instance_type} from its size; give --vcpus")
    return 4 * int(m.group(1) or 1)


def serving_window(log_text: str) -> tuple[int, float]:
    """(answered requests, seconds from the first to the last) from the container's request log."""
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in map(_STAMP.match, log_text.splitlines())
              if m]
    return len(stamps), (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0


def run_sdk(image: str, model_dir: Path, photos: Path, env: dict, work: Path) -> dict:
    from orchestrate.audit.transform_local import local_session, run_local

    out, log = work / "out", io.StringIO()
    with contextlib.redirect_stdout(log):  # the SDK prints the container's log
        run = run_local(local_session("us-east-1", container_root=work / "root"), job=work.name, image=image,
                        model_dir=model_dir, input_uri=photos.as_uri(), output_uri=out.as_uri(), environment=env)
    answered, seconds = serving_window(log.getvalue())
    return {"answered": answered, "outputs": len(list(out.iterdir())), "seconds": seconds, "wall": run.seconds}


def run_concurrent(image: str, model_dir: Path, photos: Path, work: Path) -> dict:
    from devtools.local_serve import free_port, wait_for_ping
    from orchestrate.audit.transform_local import run_attached

    port, network = free_port(), f"bench-audit-{os.getpid()}"
    # a user network: an engine run with --bridge=none (docs/platform.md §5) publishes ports only from one
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True)
    cid = subprocess.run(["docker", "run", "-d", "--network", network, "-p", f"127.0.0.1:{port}:8080",
                          "-e", "SAGEMAKER_BATCH=true", "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve"],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        start = time.monotonic()
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, timeout=120)
        run = run_attached(url, sorted(photos.iterdir()), work / "out")
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    return {"answered": len(list((work / "out").iterdir())), "outputs": len(list((work / "out").iterdir())),
            "seconds": run.seconds, "wall": time.monotonic() - start,
            "params": run.description["ExecutionParameters"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="bincounter-serving:latest", help="the serving image (make images)")
    p.add_argument("--photos", type=int, default=500, help="sample photos to transform (0: all 4,995)")
    p.add_argument("--instance-type", default="ml.m5.large")
    p.add_argument("--vcpus", type=int, default=0, help="the instance type's vCPUs (default: from its size)")
    p.add_argument("--hourly-price", type=float, help="USD per instance-hour (default: orchestrate.toml [costs])")
    p.add_argument("--instances", default="1,4,10,40", help="K values to project for")
    p.add_argument("--bins", type=int, default=ABID_BINS)
    a = p.parse_args(argv)
    if a.hourly_price is None:
        from orchestrate.core.config import load

        a.hourly_price = load(ROOT / "orchestrate.toml").costs.hourly(a.instance_type)
    if not SAMPLE_IMAGES.is_dir():
        print(f"the real sample is not at {SAMPLE_IMAGES} (it lives in ../shared): nothing to measure")
        return 1
    from devtools.random_model import random_model

    single_stream = {"MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_INTRA_OP_THREADS": str(len(os.sched_getaffinity(0)))}
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))
    paths = paths[: a.photos] if a.photos else paths
    local_cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        tmp = Path(tmp)
        photos, model_dir = tmp / "photos", tmp / "model"
        photos.mkdir(), model_dir.mkdir()
        for path in paths:
            shutil.copy(path, photos)
        random_model(model_dir)
        print(f"{len(paths)} photos of the ABID sample, random-weight ResNet50 224 px, image {a.image}, "
              f"{local_cpus} CPUs here (load average {os.getloadavg()[0]:.1f} at start)\n")
        results = {"sdk-defaults": run_sdk(a.image, model_dir, photos, {}, tmp / "sdk-defaults"),
                   "sdk-single-stream": run_sdk(a.image, model_dir, photos, single_stream,
                                                tmp / "sdk-single-stream"),
                   "batch-concurrency": run_concurrent(a.image, model_dir, photos, tmp / "batch-concurrency")}
    base = len(paths) / results["sdk-defaults"]["seconds"]
    print(f"{'run':<20} {'answered':>9} {'serving s':>10} {'img/s':>7} {'ratio':>6} {'wall s':>7}")
    for name, r in results.items():
        rate = len(paths) / r["seconds"]
        r["img_per_s"] = rate
        print(f"{name:<20} {r['answered']:>9} {r['seconds']:>10.1f} {rate:>7.1f} {rate / base:>6.2f} {r['wall']:>7.1f}")
        assert r["outputs"] == len(paths), f"{name}: {r['outputs']} outputs for {len(paths)} photos"
    print(f"\nbatch-concurrency asked for {results['batch-concurrency']['params']} by /execution-parameters")
    per_vcpu = results["batch-concurrency"]["img_per_s"] / local_cpus
    vc = a.vcpus or vcpus(a.instance_type)
    per_instance = per_vcpu * vc
    print(f"\nprojection for {a.bins:,} bins on {a.instance_type} ({vc} vCPUs, ${a.hourly_price}/h): "
          f"{per_vcpu:.1f} img/s per vCPU here x {vc} = {per_instance:.1f} img/s per instance; "
          "instance start-up and S3 reads not included")
    print(f"{'instances':>9} {'wall':>10} {'instance-hours':>15} {'cost':>9} {'per 1,000 bins':>15}")
    for k in (int(x) for x in a.instances.split(",")):
        hours = a.bins / (per_instance * k) / 3600
        cost = hours * k * a.hourly_price
        print(f"{k:>9} {hours:>9.2f}h {hours * k:>15.2f} {'$' + format(cost, ',.2f'):>9} "
              f"{'$' + format(cost / a.bins * 1000, '.4f'):>15}")
    print(json.dumps({n: {k: v for k, v in r.items() if k != "params"} for n, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
