"""``docker run IMAGE serve`` on a trained model: ready fast, answers real JPEGs, stops clean."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from container_helpers import docker

from bincounter.modelcard import ModelCard
from devtools.local_serve import wait_for_ping

pytestmark = [pytest.mark.container, pytest.mark.slow]

READY_WITHIN_S = 3.0
STOPPED_WITHIN_S = 5.0


def http(url: str, body: bytes | None = None, content_type: str = "image/jpeg",
         timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def started_at(cid: str) -> float:
    """The engine's own record of when the container's process started (epoch seconds)."""
    stamp = docker("inspect", cid, "--format", "{{.State.StartedAt}}").stdout.strip()
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp() + float(f"0.{fraction or 0}")


@contextlib.contextmanager
def serving(serving_image: str, network: str, model_dir):
    """``docker run IMAGE serve`` on ``model_dir``, published on loopback only, until /ping
    answers: (base URL, container id); removed afterwards."""
    cid = docker("run", "-d", "--network", network, "-p", "127.0.0.1::8080",
                 "-v", f"{model_dir}:/opt/ml/model:ro", serving_image, "serve").stdout.strip()
    try:
        port = docker("port", cid, "8080/tcp").stdout.split()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_ping(url, timeout=30)
        except RuntimeError as exc:
            logs = docker("logs", cid, check=False)
            pytest.fail(f"{exc}:\n{logs.stdout}{logs.stderr}")
        yield url, cid
    finally:
        docker("rm", "-f", cid, check=False)


@pytest.fixture
def server(serving_image, network, trained_model):
    """The serving image on the session's tiny model.

    Yields (base URL, container id, seconds from the container's start to the first 200 on /ping)."""
    with serving(serving_image, network, trained_model) as (url, cid):
        yield url, cid, time.time() - started_at(cid)


def test_serve_answers_ping_within_3_s_of_start(server):
    _, _, ready = server
    print(f"\n/ping answered 200 {ready:.2f} s after the container started")
    assert ready <= READY_WITHIN_S


def test_serve_counts_real_jpegs_and_rejects_garbage_with_a_reason(server, abid_sample, trained_model):
    url, _, _ = server
    card = ModelCard.read(trained_model)
    for jpeg in sorted((abid_sample / "images").glob("*.jpg"))[:3]:
        status, body = http(url + "/invocations", jpeg.read_bytes())
        assert status == 200, body
        answer = json.loads(body)
        assert answer["count"] in card.classes
        assert abs(sum(answer["probabilities"].values()) - 1) < 1e-3
    status, body = http(url + "/invocations", b"not a jpeg at all")
    assert 400 <= status < 500
    assert json.loads(body)["error"]


def test_sigterm_stops_serve_within_5_s_with_exit_0(server):
    _, cid, _ = server
    assert docker("inspect", cid, "--format", "{{.State.Pid}}").stdout.strip() != "0"
    # gunicorn itself is PID 1 (serve execs it), so the signal reaches it directly
    cmdline = docker("exec", cid, "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "gunicorn" in cmdline, cmdline
    start = time.monotonic()
    docker("kill", "--signal", "TERM", cid)
    code = int(docker("wait", cid, timeout=30).stdout.strip())
    stopped = time.monotonic() - start
    print(f"\nstopped {stopped:.2f} s after SIGTERM, exit {code}")
    assert code == 0
    assert stopped <= STOPPED_WITHIN_S


def test_the_serving_image_serves_the_int8_twin_model_json_names(serving_image, network, int8_model, abid_sample):
    import numpy as np
    import onnxruntime as ort

    from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX
    from bincounter.preprocess import preprocess_bytes

    card = ModelCard.read(int8_model)
    sessions = {name: ort.InferenceSession(str(int8_model / name), providers=["CPUExecutionProvider"])
                for name in (MODEL_INT8_ONNX, MODEL_ONNX)}
    fp32_differs = False
    with serving(serving_image, network, int8_model) as (url, _):
        for path in sorted((abid_sample / "images").glob("*.jpg"))[:3]:
            jpeg = path.read_bytes()
            status, body = http(url + "/invocations", jpeg)
            assert status == 200, body
            got = [json.loads(body)["probabilities"][str(c)] for c in card.classes]
            x = preprocess_bytes(jpeg, card.preprocess)[None]
            want, fp32 = (sessions[n].run(["probabilities"], {"input": x})[0][0] for n in (MODEL_INT8_ONNX, MODEL_ONNX))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
            fp32_differs |= bool(np.abs(np.asarray(got) - fp32).max() > 1e-4)
    assert fp32_differs, "the answers equal fp32's too: this test could not tell which graph is served"
