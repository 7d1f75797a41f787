"""Audit benchmark: Batch Transform throughput of one serving container on the real photos
of ../shared/data/abid-sample, side by side, then projected to the whole bucket.

    python -m benchmarks.bench_audit --image bincounter-serving:latest      # make bench-audit
    python -m benchmarks.bench_audit --model-dir /tmp/bench_serve/model      # a trained card's graph
    python -m benchmarks.bench_audit --photos 0 --instances 1,5,20           # every sample photo

The graphs: the one a trained card serves (``--model-dir``: its ``onnx.file``, the int8 twin
where the card names it) beside its fp32 ``model.onnx``; without ``--model-dir``, a
random-weight ResNet50 (5 classes, 224 px: the production arch; weights do not change the
compute) and its static int8 twin, quantized as training does (``bincounter.training.quantize``,
calibrated on 32 sample photos). Each graph, the same photos, four ways, in one run:

* ``sdk-defaults``: the SageMaker SDK's local transform with the image's own defaults (one
  worker per CPU, one ONNX Runtime thread each). The SDK sends one request at a time, so
  one worker computes and the others idle: the baseline.
* ``sdk-single-stream``: the same, the one stream given every core (one worker, one ONNX
  Runtime thread per CPU, ``transform_local.single_stream``): what ``orchestrate audit
  --local`` runs.
* ``batch-concurrency``: the container with its defaults, sent MaxConcurrentTransforms
  requests at once (its ``/execution-parameters`` answer, one per worker), as Batch
  Transform does on an instance (``orchestrate.audit.transform_local.run_attached``).
* ``real-time``: the container as an endpoint starts it (no SAGEMAKER_BATCH), a closed loop
  of ``--clients`` callers posting one photo each (``benchmarks.serve_load``, bench_serve's load).

img/s is photos over the serving window (first to last request in the container's log for
the SDK runs; the sending loop for the others); "wall" adds container start and stop. The
1-minute load average is read before each run and after it (the run's own work adds about
one per busy core): a figure measured beside other work is not comparable.

Projection for N bins on K instances of TYPE: this machine's batch-concurrency img/s per
vCPU of the served graph x TYPE's vCPUs (the model is compute-bound, one worker per vCPU:
assumed to scale with vCPUs, read from the size: large = 2, xlarge = 4, Nxlarge = 4N) x K
(Batch Transform gives each instance its own share of the objects). Not included: instance
start-up (minutes), S3 reads of the photos, a different CPU generation. Cost = K x hours x
the hourly price.
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


def run_realtime(image: str, model_dir: Path, photos: Path, clients: int, seconds: float) -> dict:
    from benchmarks.serve_load import Result, drive
    from devtools.local_serve import free_port, wait_for_ping

    port, network = free_port(), f"bench-audit-rt-{os.getpid()}"
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True)
    cid = subprocess.run(["docker", "run", "-d", "--network", network, "-p", f"127.0.0.1:{port}:8080",
                          "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve"],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        start = time.monotonic()
        wait_for_ping(f"http://127.0.0.1:{port}", timeout=120)
        result = Result("real-time", time.monotonic() - start)
        drive(port, [p.read_bytes() for p in sorted(photos.iterdir())], clients, seconds, 3.0, result)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    n = len(result.latencies_ms)
    return {"answered": n, "outputs": n, "seconds": result.seconds, "wall": time.monotonic() - start,
            "errors": result.errors, "p50_ms": result.pct(50), "p99_ms": result.pct(99), "clients": clients}


def graphs(model_dir: Path | None, paths: list[Path], tmp: Path) -> dict[str, Path]:
    """{"fp32": folder, "<served>": folder}: one model folder per graph, each card naming its graph."""
    import dataclasses

    import numpy as np

    from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, ModelCard
    from bincounter.preprocess import preprocess_bytes
    from bincounter.training.quantize import Recipe, write_int8
    from devtools.random_model import random_model

    if model_dir is None:
        model_dir = random_model(tmp / "random")
        spec = ModelCard.read(model_dir).preprocess
        calibration = np.stack([preprocess_bytes(p.read_bytes(), spec) for p in paths[:32]])
        write_int8(model_dir / MODEL_ONNX, {model_dir / MODEL_INT8_ONNX: Recipe(images=32)}, calibration)
        served = MODEL_INT8_ONNX
    else:
        served = ModelCard.read(model_dir).onnx_file
    out = {}
    for name, onnx_file in (("fp32", MODEL_ONNX), ("int8" if served == MODEL_INT8_ONNX else "served", served)):
        if name in out or (name == "served" and onnx_file == MODEL_ONNX):
            continue
        folder = tmp / f"graph-{name}"
        folder.mkdir()
        shutil.copy(model_dir / onnx_file, folder / onnx_file)
        card = ModelCard.read(model_dir)
        dataclasses.replace(card, onnx_file=onnx_file).write(folder)
        for extra in model_dir.iterdir():  # the monitor's reference and the like, beside the card
            if extra.suffix == ".json" and not (folder / extra.name).exists():
                shutil.copy(extra, folder)
        out[name] = folder
    return out


def load() -> float:
    return os.getloadavg()[0]


def measure(image: str, model_dir: Path, photos: Path, clients: int, seconds: float, work: Path) -> dict:
    """The four runs of one graph, each with the load average before and after it."""
    from orchestrate.audit.transform_local import single_stream

    runs = {"sdk-defaults": lambda w: run_sdk(image, model_dir, photos, {}, w),
            "sdk-single-stream": lambda w: run_sdk(image, model_dir, photos, single_stream(), w),
            "batch-concurrency": lambda w: run_concurrent(image, model_dir, photos, w),
            "real-time": lambda w: run_realtime(image, model_dir, photos, clients, seconds)}
    results = {}
    for name, run in runs.items():
        before = load()
        r = run(work / name)
        r["img_per_s"] = r["answered"] / r["seconds"] if r["seconds"] else 0.0
        r["load_before"], r["load_after"] = before, load()
        results[name] = r
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="bincounter-serving:latest", help="the serving image (make images)")
    p.add_argument("--model-dir", type=Path, help="a trained model folder (default: a random ResNet50 + int8 twin)")
    p.add_argument("--photos", type=int, default=500, help="sample photos to transform (0: all 4,995)")
    p.add_argument("--clients", type=int, default=4, help="real-time callers at once")
    p.add_argument("--realtime-seconds", type=float, default=20.0)
    p.add_argument("--instance-type", default="ml.m5.large")
    p.add_argument("--vcpus", type=int, default=0, help="the instance type's vCPUs (default: from its size)")
    p.add_argument("--hourly-price", type=float, help="USD per instance-hour (default: orchestrate.toml [costs])")
    p.add_argument("--instances", default="1,4,10,40", help="K values to project for")
    p.add_argument("--bins", type=int, default=ABID_BINS)
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)
    if a.hourly_price is None:
        from orchestrate.core.config import load as load_config

        a.hourly_price = load_config(ROOT / "orchestrate.toml").costs.hourly(a.instance_type)
    if not SAMPLE_IMAGES.is_dir():
        print(f"the real sample is not at {SAMPLE_IMAGES} (it lives in ../shared): nothing to measure")
        return 1
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))
    paths = paths[: a.photos] if a.photos else paths
    local_cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        photos.mkdir()
        for path in paths:
            shutil.copy(path, photos)
        folders = graphs(a.model_dir, paths, tmp)
        what = f"the card in {a.model_dir}" if a.model_dir else "random-weight ResNet50 224 px"
        print(f"{len(paths)} photos of the ABID sample, {what}, graphs {', '.join(folders)}, image {a.image}, "
              f"{local_cpus} CPUs here (load average {load():.1f} at start)\n")
        results = {g: measure(a.image, folder, photos, a.clients, a.realtime_seconds, tmp / g)
                   for g, folder in folders.items()}
    print(f"{'graph':<7} {'run':<19} {'answered':>9} {'serving s':>10} {'img/s':>7} {'vs sdk-def':>10} "
          f"{'vs fp32':>8} {'wall s':>7} {'load before/after':>18}")
    for graph, runs in results.items():
        base = runs["sdk-defaults"]["img_per_s"]
        for name, r in runs.items():
            fp32 = results["fp32"][name]["img_per_s"]
            print(f"{graph:<7} {name:<19} {r['answered']:>9} {r['seconds']:>10.1f} {r['img_per_s']:>7.1f} "
                  f"{r['img_per_s'] / base:>10.2f} {r['img_per_s'] / fp32:>8.2f} {r['wall']:>7.1f} "
                  f"{r['load_before']:>9.1f} / {r['load_after']:<6.1f}")
            if name != "real-time":
                assert r["outputs"] == len(paths), f"{graph} {name}: {r['outputs']} outputs for {len(paths)} photos"
            else:
                assert r["errors"] == 0, f"{graph} real-time: {r['errors']} answers were not 200"
    served = list(results)[-1]
    rt = results[served]["real-time"]
    print(f"\nreal-time: {a.clients} callers, one photo a request, p50 {rt['p50_ms']:.0f} ms, "
          f"p99 {rt['p99_ms']:.0f} ms ({served})")
    print(f"batch-concurrency asked for {results[served]['batch-concurrency']['params']} by /execution-parameters")
    per_vcpu = results[served]["batch-concurrency"]["img_per_s"] / local_cpus
    vc = a.vcpus or vcpus(a.instance_type)
    per_instance = per_vcpu * vc
    print(f"\nprojection for {a.bins:,} bins on {a.instance_type} ({vc} vCPUs, ${a.hourly_price}/h), {served} graph: "
          f"{per_vcpu:.1f} img/s per vCPU here x {vc} = {per_instance:.1f} img/s per instance; "
          "instance start-up and S3 reads not included")
    print(f"{'instances':>9} {'wall':>10} {'instance-hours':>15} {'cost':>9} {'per 1,000 bins':>15}")
    for k in (int(x) for x in a.instances.split(",")):
        hours = a.bins / (per_instance * k) / 3600
        cost = hours * k * a.hourly_price
        print(f"{k:>9} {hours:>9.2f}h {hours * k:>15.2f} {'$' + format(cost, ',.2f'):>9} "
              f"{'$' + format(cost / a.bins * 1000, '.4f'):>15}")
    record = {"date": datetime.now().strftime("%Y-%m-%d"), "photos": len(paths), "cpus": local_cpus,
              "model": what, "image": a.image,
              "results": {g: {n: {k: v for k, v in r.items() if k != "params"} for n, r in runs.items()}
                          for g, runs in results.items()}}
    if a.json:
        a.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
