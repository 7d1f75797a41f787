"""Faults survived, nothing lost: the fault matrix across serving, the Lambda, the audit, the review
loop, the monitor and training, on this machine, as one table.

    python -m benchmarks.bench_faults [--only serving lambda audit review monitor training] [--json F]

Every fault is real and injected at a real seam (``benchmarks/faults``): a signal to a real
process, botocore's own ``before-send`` hook answering with S3's error responses against a moto
server, the runtime emulator answering with SageMaker Runtime's error shapes, Label Studio
killed behind a proxy. Each row says what the component did, how long it took to be whole
again, and whether that meets the row's expectation. ``make bench-faults``; the table and its
reading are in docs/testing.md "Faults".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

CONCERNS = ("serving", "lambda", "audit", "review", "monitor", "training")


def serving_model(work: Path) -> Path:
    """A random-weight ResNet50 at 224 px and its int8 twin, served as the product serves them."""
    import numpy as np

    from bincounter.modelcard import MODEL_INT8_ONNX, ModelCard
    from bincounter.training.quantize import Recipe, write_int8
    from devtools.random_model import random_model

    model = random_model(work / "resnet50", arch="resnet50", size=224)
    calibration = np.random.default_rng(0).random((16, 3, 224, 224), dtype=np.float32)
    write_int8(model / "model.onnx", {model / MODEL_INT8_ONNX: Recipe(images=16)}, calibration)
    dataclasses.replace(ModelCard.read(model), onnx_file=MODEL_INT8_ONNX).write(model)
    return model


def run(concern: str, work: Path, image: bytes, a) -> list:
    from benchmarks.faults import serving
    from benchmarks.faults.stack import moto_stack, transform

    if concern == "serving":
        model = serving_model(work)
        return [serving.worker_killed(model, image, work / "serve-kill.log", seconds=a.seconds),
                serving.load_held(model, image, work / "serve-load.log", tuple(a.levels), a.seconds)]
    if concern == "lambda":
        from benchmarks.faults import lambda_
        from devtools.local_serve import start_serve, stop
        from devtools.random_model import random_model

        model = random_model(work / "resnet18", arch="resnet18", size=64)
        with open(work / "serve-lambda.log", "wb") as log:
            proc, url = start_serve(model, log, MODEL_SERVER_WORKERS="2")
            try:
                return lambda_.endpoint_faults(url, image, calls=a.calls)
            finally:
                stop(proc)
    if concern in ("audit", "monitor"):
        from benchmarks.faults import audit, monitor

        with moto_stack(work / concern, bins=a.bins) as stack:
            if concern == "monitor":
                return monitor.unreadable_captures(stack) + [monitor.killed_while_writing(stack)]
            transform(stack)
            return [audit.s3_errors_cloud(stack), audit.s3_errors_local(stack), audit.killed_mid_join(stack)]
    if concern == "review":
        from benchmarks.faults import review
        return review.rows(work / "review")
    from benchmarks.faults import training
    return training.rows(work / "training")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=CONCERNS, default=list(CONCERNS))
    p.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="load held: callers")
    p.add_argument("--seconds", type=float, default=8.0, help="load held: seconds per level (and the kill row)")
    p.add_argument("--calls", type=int, default=30, help="Lambda: invocations per error shape")
    p.add_argument("--bins", type=int, default=300, help="audit and monitor: bins in the stack")
    p.add_argument("--work", type=Path, help="keep logs and outputs here (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="write the rows here")
    a = p.parse_args(argv)
    from benchmarks.faults import serving, table
    from devtools.local_toolkit import SAMPLE

    logging.disable(logging.INFO)  # the components' own progress lines: the table says what happened
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-faults-"))
    photos = sorted((SAMPLE / "images").glob("*.jpg")) or sorted(Path(__file__).parent.glob("*.jpg"))
    if photos:
        image = photos[0].read_bytes()
    else:
        from bincounter.synth import generate
        image = next((generate(work / "one", n=1, size=224) / "images").glob("*.jpg")).read_bytes()
    rows, times = [], {}
    for concern in a.only:
        t0 = time.monotonic()
        rows += run(concern, work / concern, image, a)
        times[concern] = round(time.monotonic() - t0, 1)
        print(f"{concern}: {times[concern]:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    load = next((r for r in rows if r.fault.startswith("load held")), None)
    if load is not None:
        print("\nLoad held (int8 ResNet50 at 224 px, 2 workers, closed-loop callers):\n")
        print(serving.levels_table(load))
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows pass; seconds per concern: {times}; work {work}")
    if a.json:
        a.json.write_text(json.dumps({"rows": [dataclasses.asdict(r) for r in rows], "seconds": times},
                                     indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
