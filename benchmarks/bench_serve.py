"""Serving benchmark: our server (``serve``: gunicorn + Flask + ONNX Runtime) against
a seed-style baseline (Flask + torch eager + torchvision transforms), same
random-weight ResNet50 5-class model, same closed-loop load, one run, same cores.

    python -m benchmarks.bench_serve                 # make bench-serve
    python -m benchmarks.bench_serve --ours 2x1x1,2x2x1 --seconds 20
    python -m benchmarks.bench_serve --int8          # adds a static int8 copy of the model

A layout is WORKERSxTHREADSxINTRA_OP_THREADS. Prints img/s, p50, p99, the
ratio ours / baseline and cold start (process start -> first 200 on /ping).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.local_serve import wait_for_ping

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = ROOT.parent / "shared" / "data" / "abid-sample" / "images"
VENV_BIN = Path(sys.executable).parent
CLASSES = [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- the baseline server
def baseline_app():
    """The seed's handler style: torch eager ResNet50, torchvision transforms, Flask."""
    import torch
    from flask import Flask, Response, request
    from PIL import Image
    from torchvision import transforms

    from bincounter.training.models import build_model

    torch.set_num_threads(int(os.environ.get("BASELINE_TORCH_THREADS", "1")))
    model_dir = Path(os.environ["BENCH_MODEL_DIR"])
    model = build_model("resnet50", len(CLASSES), pretrained=False)
    model.load_state_dict(torch.load(model_dir / "model.pth", map_location="cpu", weights_only=True))
    model.eval()
    transform = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    app = Flask("baseline")

    @app.get("/ping")
    def ping():
        return Response(b"", status=200)

    @app.post("/invocations")
    def invocations():
        image = Image.open(io.BytesIO(request.get_data())).convert("RGB")
        with torch.no_grad():
            probs = torch.softmax(model(transform(image).unsqueeze(0)), 1)[0].tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        return {"count": CLASSES[best], "probabilities": dict(zip(map(str, CLASSES), probs))}

    return app


# ---------------------------------------------------------------- the model
def make_model(model_dir: Path, images: list[bytes]) -> None:
    """Random-weight ResNet50 with a 5-class head: model.pth, model.onnx, model.json."""
    import numpy as np
    import torch

    from bincounter.modelcard import ModelCard
    from bincounter.preprocess import PreprocessSpec, preprocess_bytes
    from bincounter.training.export import export_onnx
    from bincounter.training.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet50", len(CLASSES), pretrained=False).eval()
    torch.save(model.state_dict(), model_dir / "model.pth")
    spec = PreprocessSpec(image_size=224)
    batch = torch.from_numpy(np.stack([preprocess_bytes(b, spec) for b in images[:2]]))
    export_onnx(model, batch, model_dir / "model.onnx")
    ModelCard(classes=CLASSES, preprocess=spec, arch="resnet50").write(model_dir)


def make_int8_model(model_dir: Path, int8_dir: Path, calibration: list[bytes],
                    check: list[bytes]) -> dict:
    """Static int8 (QDQ, per-channel) copy of the fp32 model, calibrated on real photos;
    returns how far its probabilities move from the fp32 model's on ``check``."""
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    from bincounter.modelcard import ModelCard
    from bincounter.preprocess import preprocess_bytes

    card = ModelCard.read(model_dir)

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self):
            data = next(self._it, None)
            return None if data is None else {"input": preprocess_bytes(data, card.preprocess)[None]}

    int8_dir.mkdir()
    pre = int8_dir / "model.pre.onnx"
    quant_pre_process(str(model_dir / card.onnx_file), str(pre))
    quantize_static(str(pre), str(int8_dir / "model.int8.onnx"), Photos(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    pre.unlink()
    ModelCard(classes=card.classes, preprocess=card.preprocess, arch=card.arch,
              onnx_file="model.int8.onnx").write(int8_dir)
    x = np.stack([preprocess_bytes(b, card.preprocess) for b in check])
    fp32, int8 = (ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["probabilities"], {"input": x})[0] for path in (model_dir / card.onnx_file,
                                                          int8_dir / "model.int8.onnx"))
    return {"images": len(check), "top1_agreement": float((fp32.argmax(1) == int8.argmax(1)).mean()),
            "max_abs_prob_diff": float(np.abs(fp32 - int8).max())}


# ---------------------------------------------------------------- load generation
@dataclass
class Result:
    name: str
    cold_start_s: float
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    round_tails: list[float] = field(default_factory=list)  # p99/p50 within each round

    @property
    def round_tail(self) -> float:
        """Median over rounds of p99/p50: the tail without the outside load's swings between rounds."""
        return statistics.median(self.round_tails) if self.round_tails else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def _post(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def drive(port: int, images: list[bytes], clients: int, seconds: float, warmup: float,
          result: Result) -> None:
    """Closed loop: each client sends the next image as soon as its last answer arrives.
    Adds the answers that started and ended inside the measured window to ``result``."""
    lock = threading.Lock()
    first = len(result.latencies_ms)
    start = time.monotonic()
    t_begin, t_end = start + warmup, start + warmup + seconds

    def client(k: int) -> None:
        i = k
        while True:
            t0 = time.monotonic()
            if t0 >= t_end:
                return
            status = _post(port, images[i % len(images)])
            t1 = time.monotonic()
            i += clients
            if t0 >= t_begin and t1 <= t_end:
                with lock:
                    if status == 200:
                        result.latencies_ms.append((t1 - t0) * 1000)
                    else:
                        result.errors += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds += seconds
    mine = result.latencies_ms[first:]
    if len(mine) >= 2:
        q = statistics.quantiles(mine, n=100, method="inclusive")
        result.round_tails.append(q[98] / q[49])


def start_server(name: str, argv: list[str], env: dict, port: int, log_dir: Path
                 ) -> tuple[subprocess.Popen, Result]:
    """Start a server and time its cold start: process start -> first 200 on /ping."""
    log = open(log_dir / f"{name.replace(' ', '_')}.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log)
    log.close()
    try:
        wait_for_ping(f"http://127.0.0.1:{port}", proc, timeout=120, interval=0.02)
    except BaseException:
        proc.terminate()
        raise
    result = Result(name, time.monotonic() - t0)
    print(f"  {name}: ready after {result.cold_start_s:.2f} s", flush=True)
    return proc, result


def _layout(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    return tuple(parts + [1] * (3 - len(parts)))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=SAMPLE_IMAGES)
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--rounds", type=int, default=10,
                    help="measured seconds are split into this many rounds, alternating servers")
    ap.add_argument("--ours", default="default",
                    help="comma-separated layouts WxTxI for serve; 'default' = serve's own defaults")
    ap.add_argument("--baseline", default="2x1x1", help="baseline layout (2x1 was its best, README Serving)")
    ap.add_argument("--int8", action="store_true",
                    help="also serve a static int8 copy of the model with serve's defaults")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    paths = sorted(args.images.glob("*.jpg"))[: args.n_images]
    if not paths:
        print(f"no JPEGs in {args.images}: the benchmark needs the real ABID sample", file=sys.stderr)
        return 2
    images = [p.read_bytes() for p in paths]
    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    model_dir = work / "model"
    model_dir.mkdir()
    print(f"building the random-weight ResNet50 model in {model_dir} ...", flush=True)
    make_model(model_dir, images)
    int8_report = None
    if args.int8:
        int8_report = make_int8_model(model_dir, work / "model-int8", images[-32:], images[:100])
        print(f"int8 vs fp32 on {int8_report['images']} real photos: top-1 agreement "
              f"{int8_report['top1_agreement']:.1%}, max |probability difference| "
              f"{int8_report['max_abs_prob_diff']:.4f} (random weights: a fidelity check, not accuracy)",
              flush=True)
    print(f"load: {args.clients} clients, closed loop, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s "
          f"measured in {args.rounds} alternating rounds (0.5 s warm-up each), {len(images)} real JPEGs; "
          f"cpus {os.cpu_count()}; load average before "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    servers: list[tuple[subprocess.Popen, Result, int]] = []
    try:
        w, t, i = _layout(args.baseline)
        proc, res = start_server(
            f"baseline torch {w}x{t}x{i}",
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers", str(w),
             "--threads", str(t), "--no-control-socket", "--pythonpath", str(Path(__file__).parent),
             "bench_serve:baseline_app()"],
            {"BENCH_MODEL_DIR": str(model_dir), "BASELINE_TORCH_THREADS": str(i)}, args.port, work)
        servers.append((proc, res, args.port))
        for k, layout in enumerate(args.ours.split(","), start=1):
            port = args.port + k
            env = {"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
                   "MODEL_SERVER_HOST": "127.0.0.1"}
            name = "ours serve (defaults)"
            if layout != "default":
                w, t, i = _layout(layout)
                env.update(MODEL_SERVER_WORKERS=str(w), MODEL_SERVER_THREADS=str(t),
                           MODEL_SERVER_INTRA_OP_THREADS=str(i))
                name = f"ours serve {w}x{t}x{i}"
            proc, res = start_server(name, [str(VENV_BIN / "serve")], env, port, work)
            servers.append((proc, res, port))
        if args.int8:
            port = args.port + len(servers)
            proc, res = start_server("ours serve int8 (defaults)", [str(VENV_BIN / "serve")],
                                     {"SM_MODEL_DIR": str(work / "model-int8"),
                                      "SAGEMAKER_BIND_TO_PORT": str(port),
                                      "MODEL_SERVER_HOST": "127.0.0.1"}, port, work)
            servers.append((proc, res, port))
        # Rounds alternate between the servers (the idle ones wait in accept()), so
        # load from other processes on these cores falls on all of them alike.
        for r in range(args.rounds):
            for _, res, port in servers:
                drive(port, images, args.clients, args.seconds / args.rounds,
                      args.warmup if r == 0 else 0.5, res)
            print(f"  round {r + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for proc, _, _ in servers:
            proc.terminate()
        for proc, _, _ in servers:
            proc.wait(timeout=60)
    results = [res for _, res, _ in servers]
    baseline = results[0]

    print(f"\nload average after {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(f"{'server':32} {'img/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'in-round':>9} "
          f"{'cold s':>7} {'ratio':>6} {'errors':>6}")
    for r in results:
        print(f"{r.name:32} {r.throughput:7.1f} {r.pct(50):8.0f} {r.pct(99):8.0f} "
              f"{r.pct(99) / r.pct(50):8.2f} {r.round_tail:9.2f} {r.cold_start_s:7.2f} "
              f"{r.throughput / baseline.throughput:6.2f} {r.errors:6d}")
    print("p99/p50 is over all rounds; in-round is the median over rounds of each round's p99/p50.")
    best = next(r for r in results[1:] if "int8" not in r.name)
    checks = {"ratio >= 1.6": best.throughput / baseline.throughput >= 1.6,
              "p99 <= 2 x p50 (in-round)": best.round_tail <= 2,
              "cold start <= 3 s": best.cold_start_s <= 3.0,
              "no errors": all(r.errors == 0 for r in results)}
    print("targets (" + best.name + "): " + ", ".join(f"{k}: {'met' if v else 'MISSED'}"
                                                      for k, v in checks.items()))
    int8 = next((r for r in results if "int8" in r.name), None)
    if int8 is not None:
        print(f"int8 / fp32 (defaults): {int8.throughput / best.throughput:.2f}x img/s")
    for models in (model_dir, work / "model-int8"):  # 100-200 MB each; the logs stay
        shutil.rmtree(models, ignore_errors=True)
    print(f"server logs: {work}")
    if args.json:
        args.json.write_text(json.dumps(
            [{"name": r.name, "img_per_s": r.throughput, "p50_ms": r.pct(50), "p99_ms": r.pct(99),
              "p99_over_p50_in_round": r.round_tail, "cold_start_s": r.cold_start_s,
              "errors": r.errors, "n": len(r.latencies_ms)}
             for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
