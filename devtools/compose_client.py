"""The one-shot client of ``docker compose up``: real images through the Lambda, sanity-checked.

Takes the test split that training wrote (``output/data/split.json``), sends
each image to the Lambda with boto3 (``AWS_ENDPOINT_URL_LAMBDA`` points at the
local Lambda, which calls the runtime emulator, which calls ``serve``), prints
one line per image and the counts, and exits 0 only when every answer is sane:
HTTP 200, a count among the model's classes, probabilities that sum to 1, and a
verification for the quantity that was sent. Exit 1 names each bad answer;
exit 2 when there is nothing to send.

    python -m devtools.compose_client --channel /opt/ml/input/data/training \\
        --split /opt/ml/output/data/split.json --function bincounter --n 10
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import boto3
from botocore.config import Config

from bincounter.metadata import scan_dataset
from bincounter.shards import holds_shards, scan_shards
from bincounter.split import read_manifest

log = logging.getLogger(__name__)
VERDICTS = {"match", "mismatch", "review"}


def check_answer(payload: dict, expected: int) -> tuple[dict | None, str | None]:
    """(answer body, None) when sane, else (None, the reason)."""
    if payload.get("statusCode") != 200:
        return None, f"status {payload.get('statusCode')}: {payload.get('body')}"
    body = json.loads(payload["body"])
    probabilities = {int(k): v for k, v in body.get("probabilities", {}).items()}
    if body.get("count") not in probabilities:
        return None, f"count {body.get('count')!r} is not one of the classes {sorted(probabilities)}"
    if abs(sum(probabilities.values()) - 1) > 1e-3:
        return None, f"probabilities sum to {sum(probabilities.values()):.4f}"
    verification = body.get("verification") or {}
    if verification.get("expected_quantity") != expected or verification.get("verdict") not in VERDICTS:
        return None, f"verification {verification} does not answer expected_quantity={expected}"
    return body, None


def run(lambda_client, function: str, images: list[tuple[str, Path, int]]) -> int:
    counted: Counter = Counter()
    bad = []
    right = 0
    print(f"{'image':<24} {'expected':>8} {'counted':>8} {'p(expected)':>12}  verdict")
    for image_id, path, expected in images:
        event = {"image_b64": base64.b64encode(path.read_bytes()).decode(), "expected_quantity": expected}
        reply = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        if "FunctionError" in reply:
            bad.append(f"{image_id}: function error {reply['Payload'].read()[:300]!r}")
            continue
        body, reason = check_answer(json.loads(reply["Payload"].read()), expected)
        if reason:
            bad.append(f"{image_id}: {reason}")
            continue
        counted[body["count"]] += 1
        right += body["count"] == expected
        v = body["verification"]
        print(f"{image_id:<24} {expected:>8} {body['count']:>8} {v['match_probability']:>12.3f}  {v['verdict']}")
    print(f"counts: {dict(sorted(counted.items()))}; {right}/{len(images)} counted as expected")
    for line in bad:
        print(f"BAD {line}", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.compose_client", description=__doc__.split("\n")[0])
    p.add_argument("--channel", type=Path, required=True, help="the training channel (images + labels)")
    p.add_argument("--split", type=Path, required=True, help="split.json written by training")
    p.add_argument("--function", default="bincounter")
    p.add_argument("--n", type=int, default=10, help="images to send (from the test split)")
    p.add_argument("--report", type=Path, help="training's evaluation.md, printed first")
    p.add_argument("--monitor", type=Path, metavar="CAPTURES",
                   help="then `orchestrate monitor` on the data capture these requests left here")
    p.add_argument("--model", type=Path, help="with --monitor: the served model folder")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.report and a.report.is_file():
        print(a.report.read_text())
    test_ids = set(read_manifest(a.split)["test"])
    # the channel as training read it: loose files, or shards (LAYOUT=shards) whose photos are tar members
    samples = ([s for split in scan_shards(a.channel).values() for s in split] if holds_shards(a.channel)
               else scan_dataset(a.channel)[0])
    images = [(s.id, s.image_path, s.count) for s in samples if s.id in test_ids][:a.n]
    if not images:
        print(f"no test images of {a.split} found in {a.channel}", file=sys.stderr)
        return 2
    client = boto3.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 3},
                                                  read_timeout=70))
    code = run(client, a.function, images)
    if code == 0 and a.monitor:
        code = monitor(a.monitor, a.model)
    return code


def monitor(captures: Path, model: Path) -> int:
    """The monitor on what the loop's requests left in the capture folder: the window must read
    back every request (a few answers: too few for a drift test, so the monitor refuses to judge
    it, exit 3 with `drift: not judged`, which is what this step expects)."""
    from orchestrate.core.exits import DECLINED

    with tempfile.TemporaryDirectory() as out:
        code = subprocess.run([sys.executable, "-m", "orchestrate", "monitor", "--captures", str(captures),
                               "--model-data", str(model), "--out", out]).returncode
        report = Path(out) / "monitor.json"
        if code == DECLINED and report.is_file() and not json.loads(report.read_text())["comparison"]["tests"]:
            code = 0
        if code == 0:
            print(f"monitor: {json.loads((Path(out) / 'monitor.json').read_text())['comparison']['n']} answers "
                  "read back from the data capture")
    return code


if __name__ == "__main__":
    sys.exit(main())
