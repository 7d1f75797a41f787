"""``make demo``: the main job on the embedded default data, end to end.

Synthetic bins -> a SageMaker-shaped /opt/ml tree -> the sagemaker-training
toolkit's own ``train`` command runs training-image/code/train.py -> the
evaluation table -> ``serve`` on the model, the SageMaker Runtime emulator and
the local Lambda in front of it -> three bins counted through boto3's Lambda
client. Everything lands in ./demo (git-ignored); every process started here
is stopped on the way out, also on error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bincounter.optml import build_tree
from bincounter.synth import generate
from devtools.lambda_emulator import spawn
from devtools.local_serve import start_serve, stop

ROOT = Path(__file__).resolve().parents[1]
HYPERPARAMETERS = {"arch": "resnet18", "image-size": "64", "epochs": "4", "batch-size": "32",
                   "lr": "0.02", "pretrained": "false", "num-workers": "1", "seed": "0"}
ENDPOINT = "bincounter-demo"
FUNCTION = "bincounter-front-door"
# Signing needs credentials; these never leave the machine (every endpoint URL is local).
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def train_with_toolkit(base: Path) -> None:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "train.py",
           "SM_STUDIO_LOCAL_MODE": "True"}
    train = Path(sys.executable).with_name("train")
    subprocess.run([str(train)], env=env, check=True)


def _start_serve(model_dir: Path, stack: contextlib.ExitStack) -> str:
    proc, url = start_serve(model_dir)  # its log goes to this terminal
    stack.callback(stop, proc)
    return url


def local_stack(model_dir: Path, stack: contextlib.ExitStack) -> str:
    """serve -> runtime emulator -> local Lambda; returns the Lambda API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(LOCAL_AWS, PYTHONPATH=str(ROOT))
    model_url = _start_serve(model_dir, stack)
    runtime, runtime_url = spawn([sys.executable, "-m", "devtools.runtime_emulator", "--port", "0",
                                  "--endpoint", f"{ENDPOINT}={model_url}"], env)
    stack.callback(stop, runtime)
    env.update(ENDPOINT_NAME=ENDPOINT, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=runtime_url)
    front, lambda_url = spawn([sys.executable, "-m", "devtools.lambda_emulator", "--port", "0",
                               "--function", f"{FUNCTION}=handler.lambda_handler"], env)
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
            print(f"{image.name}: HTTP {result.get('statusCode')} {body.get('error', result)}")
            continue
        check = body["verification"]
        print(f"{image.name}: expected {count}, counted {body['count']} (confidence {body['confidence']:.2f}); "
              f"verification {check['verdict']} (p={check['match_probability']:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "demo"))
    p.add_argument("--n", type=int, default=400, help="synthetic bins")
    p.add_argument("--no-serve", action="store_true", help="stop after training")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    data = generate(out / "data", n=a.n, seed=0, size=128)
    base = build_tree(out / "opt_ml", {"training": data}, HYPERPARAMETERS)
    shutil.copytree(ROOT / "training-image" / "code", base / "code", dirs_exist_ok=True)
    train_with_toolkit(base)
    print((base / "output" / "data" / "evaluation.md").read_text())
    print(f"model: {base / 'model'}  report: {base / 'output' / 'data'}")
    if not a.no_serve:
        with contextlib.ExitStack() as stack:
            lambda_url = local_stack(base / "model", stack)
            print(f"\nserve + SageMaker Runtime emulator + local Lambda up; three bins through {lambda_url}:")
            count_through_lambda(lambda_url, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
