"""``make demo``: the main job on the embedded default data, end to end, in one screen.

Synthetic bins -> a SageMaker-shaped /opt/ml tree -> the sagemaker-training
toolkit's own ``train`` runs training-image/code/train.py -> the evaluation
table -> ``serve`` on the model, the SageMaker Runtime emulator and the local
Lambda in front of it -> three bins counted through boto3's Lambda client.
Everything lands in ./demo (git-ignored), the long logs of the toolkit, the
server and the emulators included; every process started here is stopped on
the way out, also on error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from bincounter.guarantees import miss_lines
from bincounter.modelcard import ModelCard
from bincounter.optml import build_tree
from bincounter.synth import generate
from devtools.local_http import spawn
from devtools.local_serve import start_serve, stop
from devtools.local_toolkit import ROOT, install_code, run_train

HYPERPARAMETERS = {"arch": "resnet18", "image-size": "64", "epochs": "4", "batch-size": "32",
                   "lr": "0.02", "pretrained": "false", "num-workers": "1", "seed": "0",
                   # 80 validation bins can vouch for 5 % and 10 % at 95 % confidence, not for
                   # the defaults' 1 % and 5 % (docs/verdicts.md)
                   "val-fraction": "0.2", "test-fraction": "0.2",
                   "max-false-match": "0.05", "max-false-mismatch": "0.1"}
ENDPOINT = "bincounter-demo"
FUNCTION = "bincounter-front-door"
# Signing needs credentials; these never leave the machine (every endpoint URL is local).
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def local_stack(model_dir: Path, logs: Path, stack: contextlib.ExitStack) -> str:
    """serve -> runtime emulator -> local Lambda, each logging into ``logs``; the Lambda API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(LOCAL_AWS, PYTHONPATH=str(ROOT))
    proc, model_url = start_serve(model_dir, logs / "serve.log")
    stack.callback(stop, proc)
    emulators = stack.enter_context(open(logs / "emulators.log", "w"))
    runtime, runtime_url = spawn([sys.executable, "-m", "devtools.runtime_emulator", "--port", "0",
                                  "--endpoint", f"{ENDPOINT}={model_url}"], env, log=emulators)
    stack.callback(stop, runtime)
    env.update(ENDPOINT_NAME=ENDPOINT, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=runtime_url)
    front, lambda_url = spawn([sys.executable, "-m", "devtools.lambda_emulator", "--port", "0",
                               "--function", f"{FUNCTION}=handler.lambda_handler"], env, log=emulators)
    stack.callback(stop, front)
    return lambda_url


def count_through_lambda(lambda_url: str, data: Path, n: int = 3) -> None:
    """Send ``n`` bins (distinct true counts) through boto3's Lambda client; print count and verdict."""
    import boto3

    client = boto3.client("lambda", endpoint_url=lambda_url, region_name=LOCAL_AWS["AWS_DEFAULT_REGION"],
                          aws_access_key_id="local", aws_secret_access_key="local")
    picked: dict[int, Path] = {}
    for meta in sorted((data / "metadata").glob("*.json")):
        picked.setdefault(json.loads(meta.read_text())["EXPECTED_QUANTITY"], meta)
    for count in sorted(picked)[::2][:n]:
        image = data / "images" / f"{picked[count].stem}.jpg"
        payload = {"image_b64": base64.b64encode(image.read_bytes()).decode(), "expected_quantity": count}
        reply = client.invoke(FunctionName=FUNCTION, Payload=json.dumps(payload).encode())
        result = json.loads(reply["Payload"].read())
        body = json.loads(result.get("body") or "{}")
        if result.get("statusCode") != 200:
            print(f"   {image.name}: HTTP {result.get('statusCode')} {body.get('error', result)}")
            continue
        check = body["verification"]
        print(f"   {image.name}: expected {count}, counted {body['count']} (confidence {body['confidence']:.2f});"
              f" verdict {check['verdict']} (p={check['match_probability']:.2f})")


def train(base: Path, log: Path) -> ModelCard:
    started = time.monotonic()
    proc = run_train(base, log=log)
    if proc.returncode != 0:
        failure = base / "output" / "failure"
        reason = failure.read_text() if failure.is_file() else f"exit {proc.returncode}"
        raise SystemExit(f"training failed: {reason}\n(full log: {log})")
    card = ModelCard.read(base / "model")
    print(f"   done in {time.monotonic() - started:.0f} s; held-out test split of these synthetic bins:")
    return card


def operating_point_line(card: ModelCard) -> str:
    """The verdicts' operating point in one line: thresholds, targets, test rates with their n."""
    op = card.operating_point
    test, targets = card.served_test_point(), op["targets"]
    return (f"verdicts ({card.verification.describe()}; targets false match <= {targets['max_false_match']:.0%}, "
            f"false mismatch <= {targets['max_false_mismatch']:.0%}, {op['promise']}); "
            f"on the test split: false match {test['false_match_rate']:.1%} "
            f"of {test['false_match_n']} wrong asks, false mismatch {test['false_mismatch_rate']:.1%} of "
            f"{test['false_mismatch_n']} correct asks, {test['auto_share']:.0%} answered without review")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "demo"))
    p.add_argument("--n", type=int, default=400, help="synthetic bins")
    p.add_argument("--no-serve", action="store_true", help="stop after training")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    data = generate(out / "data", n=a.n, seed=0, size=128)
    counts = Counter(json.loads(m.read_text())["EXPECTED_QUANTITY"] for m in (data / "metadata").glob("*.json"))
    print(f"1. data: {a.n} synthetic bins (drawn, not photographed) in {data}, "
          f"{', '.join(f'{n} of count {c}' for c, n in sorted(counts.items()))}")
    base = install_code(build_tree(out / "opt_ml", {"training": data}, HYPERPARAMETERS))
    print(f"2. training: {HYPERPARAMETERS['arch']} from scratch, {HYPERPARAMETERS['image-size']} px, "
          f"{HYPERPARAMETERS['epochs']} epochs, through the sagemaker-training toolkit "
          f"(log: {out / 'train.log'})")
    card = train(base, out / "train.log")
    report = base / "output" / "data"
    summary = (report / "evaluation.md").read_text().split("\n\n")[1:3]  # the accuracy line, the table
    print("\n".join("   " + line for line in "\n".join(summary).splitlines()))
    print(f"   {operating_point_line(card)}")
    for line in miss_lines(card.served_test_point(), card.operating_point["targets"]):
        print(f"   above target: {line}")
    print(f"   model: {base / 'model'} ({card.onnx_file}); report: {report / 'evaluation.md'}")
    if not a.no_serve:
        with contextlib.ExitStack() as stack:
            lambda_url = local_stack(base / "model", out, stack)
            print(f"3. serving: serve + SageMaker Runtime emulator + local Lambda (logs: {out}/serve.log, "
                  f"{out}/emulators.log); three bins through boto3's Lambda client:")
            count_through_lambda(lambda_url, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
