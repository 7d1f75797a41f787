"""The loop a monitored endpoint runs, with real parts: the session's trained model served by
``serve``, the local SageMaker Runtime writing data capture as SageMaker does, boto3 sending
photos through it, and ``orchestrate monitor`` reading the captures back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from PIL import Image, ImageFilter

from bincounter.split import read_manifest
from bincounter.synth import generate
from devtools.local_serve import start_serve, stop
from devtools.runtime_emulator import RuntimeEmulator
from orchestrate import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc, url = start_serve(trained_model, log)
    yield url
    stop(proc)


def _send(server_url: str, captures: Path, photos: list[tuple[bytes, int]]) -> None:
    emulator = RuntimeEmulator({"bincounter": server_url}, capture_dir=captures).start()
    try:
        runtime = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=emulator.url,
                               aws_access_key_id="x", aws_secret_access_key="x",
                               config=BotoConfig(retries={"max_attempts": 1}))
        for body, expected in photos:
            runtime.invoke_endpoint(EndpointName="bincounter", Body=body, ContentType="image/jpeg",
                                    CustomAttributes=f"expected_quantity={expected}")
    finally:
        emulator.stop()


def _test_photos(trained_run, synthetic_bins) -> list[tuple[bytes, int]]:
    """The photos of the model's own test split, each with its recorded quantity."""
    base, _ = trained_run
    ids = read_manifest(base / "output" / "data" / "split.json")["test"]
    return [((synthetic_bins / "images" / f"{i}.jpg").read_bytes(),
             json.loads((synthetic_bins / "metadata" / f"{i}.json").read_text())["EXPECTED_QUANTITY"]) for i in ids]


def _darkened(jpeg: bytes) -> bytes:
    """Another camera: dark and out of focus."""
    img = Image.open(io.BytesIO(jpeg)).convert("RGB").point(lambda v: v // 6).filter(ImageFilter.GaussianBlur(3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def _monitor(captures: Path, model: Path, out: Path, *extra: str) -> int:
    return cli.main(["monitor", "--captures", str(captures), "--model-data", str(model), "--out", str(out), *extra])


def _fresh_photos(folder: Path, n: int) -> list[tuple[bytes, int]]:
    """Bins the reference never held: the same generator as the training bins, another seed."""
    bins = generate(folder, n=n, seed=23, size=64)
    return [((bins / "images" / f"{m.stem}.jpg").read_bytes(), json.loads(m.read_text())["EXPECTED_QUANTITY"])
            for m in sorted((bins / "metadata").glob("*.json"))]


def test_fresh_bins_like_the_training_ones_do_not_drift_and_darkened_photos_do(server, trained_run, trained_model,
                                                                               synthetic_bins, tmp_path, capsys):
    photos = _test_photos(trained_run, synthetic_bins)
    assert len(photos) >= 20
    quiet = tmp_path / "quiet"
    fresh = _fresh_photos(tmp_path / "fresh", 2 * len(photos))
    reference_ids = set(read_manifest(trained_run[0] / "output" / "data" / "split.json")["test"])
    assert not {body for body, _ in fresh} & {body for body, _ in photos}  # disjoint from the reference
    assert reference_ids
    _send(server, quiet, fresh)
    files = list(quiet.rglob("*.jsonl"))
    assert files and all("bincounter/AllTraffic/" in f.as_posix() for f in files)  # SageMaker's layout
    assert _monitor(quiet, trained_model, tmp_path / "r1", "--fail-on-drift") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("drift: no")
    doc = json.loads((tmp_path / "r1" / "monitor.json").read_text())
    assert doc["comparison"]["n"] == len(fresh) and doc["window"]["bad"] == []
    assert doc["comparison"]["live"]["verdict_n"] == len(fresh) and len(doc["comparison"]["tests"]) == 4
    est = doc["comparison"]["estimates"]
    assert 0 < est["accuracy_estimate"] < 1 and 0 < est["test"]["accuracy_estimate"] < 1
    for name in ("monitor.md", "monitor.html"):
        assert "drift: no" in (tmp_path / "r1" / name).read_text()

    shifted = tmp_path / "shifted"
    _send(server, shifted, [(_darkened(body), q) for body, q in photos * 2])
    with open(next(shifted.rglob("*.jsonl")), "a") as f:
        f.write('{"captureData": {"endpointOutput": "trunc\n')  # a line cut short: named, not fatal
    assert _monitor(shifted, trained_model, tmp_path / "r2") == 0  # the window was read: 0 without --fail-on-drift
    assert capsys.readouterr().out.startswith("drift: yes")
    assert _monitor(shifted, trained_model, tmp_path / "r3", "--fail-on-drift") == 3
    doc = json.loads((tmp_path / "r3" / "monitor.json").read_text())
    assert doc["comparison"]["drift"] and doc["comparison"]["reasons"]
    assert [why for _, why in doc["window"]["bad"]] == [doc["window"]["bad"][0][1]] and \
        doc["window"]["bad"][0][0].endswith(f":{2 * len(photos) + 1}")
    assert "line not read" in (tmp_path / "r3" / "monitor.md").read_text()


def test_a_window_outside_the_captures_hours_reads_nothing_and_says_so(server, trained_run, trained_model,
                                                                       synthetic_bins, tmp_path, capsys):
    captures = tmp_path / "captures"
    _send(server, captures, _test_photos(trained_run, synthetic_bins)[:3])
    assert _monitor(captures, trained_model, tmp_path / "r", "--until", "2020-01-01") == 3  # refused: not judged
    doc = json.loads((tmp_path / "r" / "monitor.json").read_text())
    assert doc["window"]["files"] == 0 and doc["comparison"]["n"] == 0 and doc["comparison"]["skipped"]
    assert capsys.readouterr().out.startswith("drift: not judged (0 answers")


def test_a_model_without_a_reference_and_a_missing_folder_are_one_line_errors(trained_model, tmp_path, capsys):
    old = tmp_path / "old_model"
    old.mkdir()
    (old / "model.json").write_text((trained_model / "model.json").read_text())
    assert _monitor(tmp_path, old, tmp_path / "r") == 1
    assert "no monitor_reference.json beside model.json" in capsys.readouterr().err
    assert _monitor(tmp_path / "absent", trained_model, tmp_path / "r") == 1
    assert "no such folder" in capsys.readouterr().err
