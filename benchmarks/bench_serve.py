"""Serving benchmark on a trained model: a seed-style server (Flask + torch eager +
torchvision transforms), ``serve`` on fp32 and ``serve`` on the int8 twin training
wrote, same weights, same closed-loop load, one run, same cores.

    python -m benchmarks.bench_serve                          # make bench-serve: trains, or reuses --work's model
    python -m benchmarks.bench_serve --model-dir DIR          # an existing model (trained with quantize=true)
    python -m benchmarks.bench_serve --ours default,2x2x1     # more fp32 layouts (WORKERSxTHREADSxORT threads)

Prints img/s, p50, p99, cold start (process start -> first 200 on /ping), the ratios
to the baseline and int8 / fp32, both models' test accuracy (measured by training on
its test split) and the cost per million checks at the configured hourly price.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serve_load import Result, drive
from devtools.local_serve import launch_serve, stop, wait_for_ping
from devtools.local_toolkit import ROOT, SAMPLE

# the budget of the model it trains: ResNet50 from scratch at the serving size on all
# 3,310 usable sample photos (bench_train's split: 2,410 / 300 / 600); 3-4 hours
# on 2 shared vCPUs (measured once). Weak (no ImageNet weights), but trained: see benchmarks/README.md
# "Serving speed".
BUDGET = {"arch": "resnet50", "pretrained": "false", "image-size": "224", "epochs": "5", "lr": "0.01",
          "batch-size": "32", "num-workers": "1", "profile-steps": "0", "checkpoint-steps": "0",
          "log-interval": "10", "quantize": "true"}


def train_model(work: Path, data: Path) -> Path:
    """The budget above through the real toolkit; reused when ``work`` already holds it."""
    from benchmarks.bench_train import make_channels
    from bincounter.optml import build_tree
    from devtools.local_toolkit import install_code, run_train

    base = work / "tree"
    if (base / "model" / "model.json").is_file():
        print(f"reusing the model trained in {base} (delete it to train again)", flush=True)
        return base / "model"
    channels = make_channels(data, work, 2410, 300, 600, split_seed=2024)
    install_code(build_tree(base, channels, BUDGET))
    print(f"training {BUDGET['arch']} at {BUDGET['image-size']} px for {BUDGET['epochs']} epochs on "
          f"{data}: log in {base / 'train.log'}", flush=True)
    t0 = time.monotonic()
    if run_train(base, log=base / "train.log").returncode != 0:
        raise SystemExit(f"training failed: {base / 'output' / 'failure'}, log {base / 'train.log'}")
    print(f"trained in {time.monotonic() - t0:.0f} s", flush=True)
    return base / "model"


def named(model_dir: Path, onnx_file: str, out: Path) -> Path:
    """``model_dir``'s files (linked) under a card that names ``onnx_file``."""
    import dataclasses

    from bincounter.modelcard import ModelCard

    out.mkdir(parents=True)
    for f in model_dir.iterdir():
        (out / f.name).symlink_to(f.resolve())
    (out / "model.json").unlink()
    dataclasses.replace(ModelCard.read(model_dir), onnx_file=onnx_file).write(out)
    return out


def start(name: str, argv_or_model, env: dict, port: int, log: Path) -> tuple[subprocess.Popen, Result]:
    """Start a server (``serve`` on a model dir, else an argv) and time its cold start."""
    t0 = time.monotonic()
    if isinstance(argv_or_model, Path):
        # MODEL_SERVER_WORKERS="": serve's own default (a worker per CPU), not launch_serve's 1
        proc, _ = launch_serve(argv_or_model, log, port=port, **{"MODEL_SERVER_WORKERS": "", **env})
    else:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv_or_model, env={**os.environ, **env}, stdout=out, stderr=out,
                                    start_new_session=True)
    try:
        wait_for_ping(f"http://127.0.0.1:{port}", proc, timeout=180, interval=0.02)
    except BaseException:
        stop(proc)
        raise
    result = Result(name, time.monotonic() - t0)
    print(f"  {name}: ready after {result.cold_start_s:.2f} s", flush=True)
    return proc, result


def layout(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    return tuple(parts + [1] * (3 - len(parts)))  # type: ignore[return-value]


def report(results: list[Result], card) -> dict:
    """The table, the ratios, the accuracies, the costs and the targets; returns the summary."""
    from orchestrate.core.config import load
    from orchestrate.core.costs import cost_per_million

    base, fp32, int8 = results[0], results[1], results[-1]
    print(f"\nload average after {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(f"{'server':34} {'img/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'in-round':>9} "
          f"{'cold s':>7} {'ratio':>6} {'errors':>6}")
    for r in results:
        print(f"{r.name:34} {r.throughput:7.1f} {r.pct(50):8.0f} {r.pct(99):8.0f} "
              f"{r.pct(99) / r.pct(50):8.2f} {r.round_tail:9.2f} {r.cold_start_s:7.2f} "
              f"{r.throughput / base.throughput:6.2f} {r.errors:6d}")
    print("ratio = img/s / the baseline's; p99/p50 over all rounds, in-round = median of each round's.")
    test = card.quantization["test"]
    acc = {k: test[k]["accuracy"] * 100 for k in ("fp32", "int8")}
    print(f"int8 / fp32: {int8.throughput / fp32.throughput:.2f}x img/s; test accuracy (training's test "
          f"split, n={test['int8']['n']}): fp32 {acc['fp32']:.2f} %, int8 {acc['int8']:.2f} %, top-1 "
          f"agreement {test['top1_agreement'] * 100:.1f} %; model.json names {card.onnx_file}")
    cfg = load(ROOT / "orchestrate.toml")
    kind = cfg.deploy.instance_type
    price = cfg.costs.hourly(kind)
    print(f"cost per million checks on {kind} at ${price}/h if it served these rates "
          f"(= price / (img/s x 3600) x 1e6): "
          + ", ".join(f"{r.name} ${cost_per_million(price, r.throughput):.3f}" for r in results))
    checks = {"int8 >= 4 x baseline img/s": int8.throughput / base.throughput >= 4,
              "int8 p99 <= 1.5 x p50": int8.pct(99) / int8.pct(50) <= 1.5,
              "int8 p99 <= 1.5 x p50 in-round": int8.round_tail <= 1.5,
              "int8 accuracy within 1 pp": acc["fp32"] - acc["int8"] <= 1.0,
              "no errors": all(r.errors == 0 for r in results)}
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return {"servers": [r.to_dict() for r in results], "accuracy": acc, "targets": checks,
            "load_average_after": os.getloadavg()[0], "host": card.quantization["speed"]["host"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, help="a trained model with model.int8.onnx (default: train one)")
    ap.add_argument("--data", type=Path, default=SAMPLE, help="ABID-layout photos to train on and send")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_serve"), help="where the model is trained")
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--rounds", type=int, default=10,
                    help="measured seconds are split into this many rounds, alternating servers")
    ap.add_argument("--ours", default="default",
                    help="comma-separated fp32 layouts WxTxI for serve; 'default' = serve's own defaults")
    ap.add_argument("--baseline", default="2x1x1", help="baseline layout (2x1 was its best, benchmarks/README.md)")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, ModelCard

    paths = sorted((args.data / "images").glob("*.jpg"))[: args.n_images]
    if not paths:
        print(f"no JPEGs in {args.data / 'images'}: the benchmark needs the real ABID sample", file=sys.stderr)
        return 2
    model_dir = args.model_dir or train_model(args.work, args.data)
    card = ModelCard.read(model_dir)
    if not (model_dir / MODEL_INT8_ONNX).is_file() or "test" not in card.quantization:
        raise SystemExit(f"{model_dir} has no measured int8 twin: train it with quantize=true "
                         f"({card.quantization.get('reasons', ['quantize=false'])})")
    images = [p.read_bytes() for p in paths]
    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    dirs = {"fp32": named(model_dir, MODEL_ONNX, work / "fp32"), "int8": named(model_dir, MODEL_INT8_ONNX, work / "int8")}
    print(f"{card.arch} {card.preprocess.image_size} px from {model_dir}; load: {args.clients} clients, closed loop, "
          f"{args.warmup:.0f} s warm-up + {args.seconds:.0f} s measured per server in {args.rounds} alternating "
          f"rounds, {len(images)} real JPEGs; {os.cpu_count()} CPUs ({card.quantization['speed']['host']['cpu']}, "
          f"AVX-512 VNNI: {card.quantization['speed']['host']['avx512_vnni']}); load average before "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    servers: list[tuple[subprocess.Popen, Result, int]] = []
    try:
        w, t, i = layout(args.baseline)
        port = args.port
        servers.append((*start(f"baseline seed-style torch {w}x{t}x{i}",
                               [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(w),
                                "--threads", str(t), "--no-control-socket", "--pythonpath", str(Path(__file__).parent),
                                "seed_server:app()"],
                               {"BENCH_MODEL_DIR": str(model_dir), "BASELINE_TORCH_THREADS": str(i)}, port,
                               work / "baseline.log"), port))
        fp32_layouts = args.ours.split(",")
        for k, lay in enumerate(fp32_layouts + ["default"], start=1):
            kind = "int8" if k > len(fp32_layouts) else "fp32"
            env, name = {}, f"serve {kind} (defaults)"
            if lay != "default":
                w, t, i = layout(lay)
                env = {"MODEL_SERVER_WORKERS": str(w), "MODEL_SERVER_THREADS": str(t),
                       "MODEL_SERVER_INTRA_OP_THREADS": str(i)}
                name = f"serve {kind} {w}x{t}x{i}"
            servers.append((*start(name, dirs[kind], env, args.port + k, work / f"serve-{kind}-{k}.log"),
                            args.port + k))
        # Rounds alternate between the servers (the idle ones wait in accept()), so
        # load from other processes on these cores falls on all of them alike.
        for r in range(args.rounds):
            for _, res, port in servers:
                drive(port, images, args.clients, args.seconds / args.rounds, args.warmup if r == 0 else 0.5, res)
            print(f"  round {r + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for proc, _, _ in servers:
            stop(proc, timeout=60)
    summary = report([res for _, res, _ in servers], card)
    print(f"server logs: {work}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
