"""The whole bucket's data path: shards made, and read by training, against loose files, on the real sample.

    python -m benchmarks.bench_data                       # make bench-data (~3 min on 2 cores)
    python -m benchmarks.bench_data --local-job 2 --json benchmarks/results/bench_data-DATE.json

1. **making shards**: ``bincounter.shards.write_part`` over the sample's folder (what each
   instance of the Processing job runs on its part, the S3 reads aside): photos/s and MB/s;
2. **reading them**: one training epoch's batches through the training's own loaders, loose
   files (``BinDataset`` + ``EpochSampler``, random reads) against the shards (``ShardStream``,
   sequential tar reads), side by side in this run, alternated ``--repeats`` times, at the
   training image size with augmentation on: images/s, time to the first batch, the ratio;
3. **on paper, for 535k photos**: S3 requests per layout, the shard job's instances, hours and
   cost, and whether a GPU's loader keeps up, from the rates measured here and the figures
   stated in ``PAPER`` (AWS's documented limits and prices; each says where it is from).

Measured here on local disk (the page cache warm after the first pass): the readers' CPU
cost, not S3's latency; the S3 side is the paper part.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from benchmarks import results_args
from bincounter.labels import CountRange
from bincounter.metadata import Sample
from bincounter.preprocess import PreprocessSpec
from bincounter.shards import folder_bins, merge_indexes, scan_shards, write_part
from bincounter.training.data import BinDataset, EpochSampler, make_loader
from bincounter.training.recipe import augment_bin
from bincounter.shards import scan_shards
from bincounter.training.shardset import ShardStream
from devtools.local_toolkit import SAMPLE
from orchestrate.data.shard_job import MEAN_BIN_BYTES, READERS

BUCKET_BINS = 535_234
# the figures the paper part rests on; change one and the projection follows
PAPER = {
    "bin_bytes": MEAN_BIN_BYTES,   # an ABID photo (~43 KB) and its metadata (~2 KB)
    "shard_mb": 150,               # AWS's guidance for small files: pack into objects of ~100-200 MB
    "get_latency_s": 0.030,        # an in-region GET of a small object, first byte to last (assumed; S3 docs: "tens of ms")
    "get_per_s_per_prefix": 5500,  # S3: at least 5,500 GET/HEAD per second per partitioned prefix
    "get_usd_per_1000": 0.0004,    # S3 Standard GET, us-east-1
    "instance_usd_per_h": 0.115,   # ml.m5.large Processing, us-east-1 (2 vCPU, up to 10 Gbps)
    "gpu_step_s": 0.040,           # ResNet50 at 224 px, batch 32, AMP on one A10G (ml.g5): ~800 images/s (assumed)
    "gpu_vcpus": 4,                # ml.g5.xlarge: 4 vCPUs, 3 of them loader workers
}


def make_shards(data: Path, out: Path, shard_mb: float) -> dict:
    bins = folder_bins(data)
    nbytes = sum(b.size for b in bins)
    t0 = time.perf_counter()
    write_part(bins, out, shard_mb=shard_mb)
    seconds = time.perf_counter() - t0
    doc = merge_indexes(out)
    return {"bins": len(bins), "mb": nbytes / 1e6, "seconds": seconds, "photos_per_s": len(bins) / seconds,
            "mb_per_s": nbytes / 1e6 / seconds, "shards": len(doc["shards"]), "unreadable": len(doc["unreadable"])}


def local_job(data: Path, out: Path, shard_mb: float, instances: int) -> dict:
    """The same shards by the Processing job under the SDK's local mode (the training image,
    ``instances`` containers): wall time, container start included."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orchestrate", "shards", "--from-dir", str(data), "--out", str(out),
                           "--local", "--instance-count", str(instances), "--shard-mb", str(shard_mb),
                           "--local-root", str(out.parent / "local")], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the local shard job failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    bins = sum(len(v) for v in scan_shards(out).values())
    return {"instances": instances, "bins": bins, "seconds": seconds, "photos_per_s": bins / seconds,
            "photos_per_s_per_instance": bins / seconds / instances}


def loaders(data: Path, shards: Path, spec: PreprocessSpec, batch: int, workers: int, seed: int) -> dict:
    """The train split of the shards, as the two loaders training would build over it (the loose
    one over the same bins in ``data``)."""
    counts = CountRange(1, 5)
    train = [s for s in scan_shards(shards)["train"] if counts.contains(s.count)]
    loose = [Sample(s.id, data / "images" / f"{s.id}.jpg", s.count) for s in train]
    sampler = EpochSampler([counts.to_index(s.count) for s in loose], batch, seed)
    stream = ShardStream(train, spec, counts.to_index, batch, seed, workers, augment=augment_bin)
    return {"loose": (make_loader(BinDataset(loose, spec, counts.to_index, augment=augment_bin), batch, workers,
                                  seed, sampler), sampler),
            "shards": (DataLoader(stream, batch_size=None, num_workers=workers), stream), "n": len(train)}


def epoch(loader, sampler, number: int) -> dict:
    """One epoch: time to the first batch, images/s over the whole."""
    sampler.set_epoch(number)
    t0 = time.perf_counter()
    first, images = None, 0
    for x, _ in loader:
        first = first or time.perf_counter() - t0
        images += len(x)
    seconds = time.perf_counter() - t0
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds, "first_batch_s": first}


def paper(made: dict, read: dict, workers: int) -> dict:
    """For the whole bucket, from the rates measured here and ``PAPER``."""
    p = PAPER
    shards = math.ceil(BUCKET_BINS * p["bin_bytes"] / (p["shard_mb"] * 1e6))
    loose_gets = 2 * BUCKET_BINS  # a photo and its metadata
    # an instance fetches READERS bins at once (two GETs each) and packs them on one core
    fetch_rate = READERS / (2 * p["get_latency_s"])
    per_instance = min(fetch_rate, made["photos_per_s"])
    one_instance_h = BUCKET_BINS / per_instance / 3600
    per_core = read["shards"] / max(1, workers)
    gpu_rate = 32 / p["gpu_step_s"]
    fed = (p["gpu_vcpus"] - 1) * per_core
    return {
        "requests": {"loose_file_mode": loose_gets + 2 * math.ceil(BUCKET_BINS / 1000),
                     "loose_fastfile_per_epoch": loose_gets, "shards": shards + 1,
                     "usd_loose_per_read": loose_gets / 1000 * p["get_usd_per_1000"],
                     "loose_seconds_at_prefix_limit": loose_gets / p["get_per_s_per_prefix"],
                     "loose_hours_one_stream": loose_gets * p["get_latency_s"] / 3600},
        "shard_job": {"photos_per_s_per_instance": per_instance, "hours_on_1": one_instance_h,
                      "hours_on_8": one_instance_h / 8, "usd": one_instance_h * p["instance_usd_per_h"],
                      "readers": READERS, "one_reader_photos_per_s": 1 / (2 * p["get_latency_s"]),
                      "bound_by": "GET latency" if fetch_rate < made["photos_per_s"] else "CPU"},
        "gpu": {"needs_images_per_s": gpu_rate, "loader_images_per_s_per_core": per_core,
                "loader_on_gpu_instance": fed, "data_wait_share": max(0.0, 1 - fed / gpu_rate),
                "cores_for_under_10pct_wait": math.ceil(0.9 * gpu_rate / per_core)},
        "figures": p}


def report(r: dict) -> str:
    m, rd, pp = r["made"], r["read"], r["paper"]
    job = r.get("local_job")
    lines = [f"## Making shards ({m['bins']} photos, {m['mb']:.1f} MB, --shard-mb {r['settings']['shard_mb']})", "",
             f"{m['photos_per_s']:.0f} photos/s, {m['mb_per_s']:.1f} MB/s on one core: {m['shards']} shards, "
             f"{m['unreadable']} unreadable" + (
                 f"; the Processing job under local mode on {job['instances']} instances: {job['seconds']:.1f} s "
                 f"for {job['bins']} bins, containers' start included ({job['photos_per_s_per_instance']:.0f} "
                 "photos/s per instance)" if job else ""), "",
             f"## Reading one epoch ({rd['n']} train photos, {r['settings']['image_size']} px, batch "
             f"{r['settings']['batch']}, {r['settings']['workers']} loader workers, augmentation on; "
             f"{r['settings']['repeats']} alternated repeats, medians)", "",
             "| layout | images/s | first batch s |", "|---|---|---|"]
    lines += [f"| {k} | {rd[k]:.0f} | {rd[k + '_first_s']:.2f} |" for k in ("loose", "shards")]
    q, s, g = pp["requests"], pp["shard_job"], pp["gpu"]
    lines += ["", f"shards / loose: {rd['shards'] / rd['loose']:.2f}x images/s", "",
              f"## On paper: {BUCKET_BINS:,} photos", "",
              f"- requests: loose {q['loose_file_mode']:,} (File mode, before the first step; FastFile the same "
              f"{q['loose_fastfile_per_epoch']:,} GETs every epoch) against {q['shards']:,} for shards; "
              f"the loose GETs take {q['loose_hours_one_stream']:.1f} h one at a time, "
              f"{q['loose_seconds_at_prefix_limit']:.0f} s at best (S3's per-prefix rate), "
              f"${q['usd_loose_per_read']:.2f} a pass",
              f"- shard job: {s['photos_per_s_per_instance']:.0f} photos/s per instance with {s['readers']} readers "
              f"({s['bound_by']}-bound; {s['one_reader_photos_per_s']:.0f}/s with one), "
              f"{s['hours_on_1']:.1f} h on one instance, {s['hours_on_8']:.1f} h on 8, ${s['usd']:.2f} in all",
              f"- GPU: {g['needs_images_per_s']:.0f} images/s wanted; {g['loader_images_per_s_per_core']:.0f} per "
              f"loader core measured here, {g['loader_on_gpu_instance']:.0f} from the GPU instance's loader cores: "
              f"data wait {g['data_wait_share']:.0%} of step time; under 10 % needs "
              f"{g['cores_for_under_10pct_wait']} loader cores"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--shard-mb", type=float, default=5.0,
                   help="the sample's ~45 MB in shards enough for every loader worker (150 for the bucket)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="loader workers (training's default here: CPUs - 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--local-job", type=int, default=0, metavar="N",
                   help="also time the shard job under the SDK's local mode on N instances (Docker, the training image)")
    results_args.add(p)
    a = p.parse_args(argv)
    if (code := results_args.early_exit(a, report)) is not None:
        return code
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        made = make_shards(a.data, Path(tmp) / "shards", a.shard_mb)
        job = local_job(a.data, Path(tmp) / "job", a.shard_mb, a.local_job) if a.local_job else None
        built = loaders(a.data, Path(tmp) / "shards", PreprocessSpec(image_size=a.image_size), a.batch, a.workers, 0)
        runs: dict[str, list[dict]] = {"loose": [], "shards": []}
        for n in range(a.repeats):  # alternated, so a slower minute of the machine hits both
            for name in (("loose", "shards") if n % 2 == 0 else ("shards", "loose")):
                runs[name].append(epoch(*built[name], n))
                print(f"repeat {n} {name}: {runs[name][-1]['images_per_s']:.0f} images/s", flush=True)
    read = {"n": built["n"], "runs": runs}
    for name, rs in runs.items():
        read[name] = statistics.median(r["images_per_s"] for r in rs)
        read[name + "_first_s"] = statistics.median(r["first_batch_s"] for r in rs)
    result = {"settings": {"shard_mb": a.shard_mb, "image_size": a.image_size, "batch": a.batch,
                           "workers": a.workers, "repeats": a.repeats},
              "made": made, "local_job": job, "read": read, "paper": paper(made, read, a.workers)}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
