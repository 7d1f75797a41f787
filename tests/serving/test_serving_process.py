"""``serve`` as a real process on a loopback port: gunicorn as the process we
started, readiness, real photos, graceful SIGTERM, failing fast on a bad model."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import time
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serving_helpers import check_openapi, http

from bincounter.modelcard import ModelCard
from devtools.local_serve import SERVE, launch_serve, start_serve, stop, wait_for_ping

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_serve_replaces_itself_with_the_gunicorn_master(live_server):
    proc, _ = live_server
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"gunicorn" in cmdline and b"python:bincounter.serving.gunicorn_conf" in cmdline
    workers = _children(proc.pid)
    assert len(workers) == 1  # MODEL_SERVER_WORKERS=1 in the fixture
    assert b"gunicorn" in Path(f"/proc/{workers[0]}/cmdline").read_bytes()


def test_real_photos_from_the_shared_sample_are_counted(live_server, real_jpegs, trained_model):
    _, url = live_server
    classes = ModelCard.read(trained_model).classes
    for jpeg in real_jpegs:
        reply = http(url, "/invocations", jpeg, {"Content-Type": "image/jpeg",
                                                 "X-Amzn-SageMaker-Custom-Attributes": "expected_quantity=2"})
        assert reply.status == 200
        pred = reply.json()
        assert pred["count"] in classes and pred["verification"]["expected_quantity"] == 2


def test_ping_answers_503_or_200_from_the_first_connection_on(trained_model, tmp_path):
    """Every ping gets an answer while starting; once each worker has loaded, only 200s."""
    log = tmp_path / "serve.log"
    proc, url = launch_serve(trained_model, log, MODEL_SERVER_WORKERS="2")
    try:
        answers = wait_for_ping(url, proc)
        assert set(answers) <= {200, 503} and answers[-1] == 200
        deadline = time.monotonic() + 60
        while log.read_text().count("bincounter.serving.handler: loaded") < 2:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        for _ in range(6):  # the platform's own ping timeout is 2 s
            reply = http(url, "/ping", timeout=2)
            assert (reply.status, reply.body) == (200, b"")
    finally:
        assert stop(proc, group=False) == 0, (tmp_path / "serve.log").read_text()[-2000:]


def test_sigterm_lets_an_in_flight_request_finish(trained_model, real_jpegs, tmp_path):
    log = tmp_path / "serve.log"
    proc, url = launch_serve(trained_model, log)
    wait_for_ping(url, proc)
    host, port = urlsplit(url).hostname, urlsplit(url).port
    body = json.dumps({"image": base64.b64encode(real_jpegs[0]).decode()}).encode()
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                  + body[: len(body) // 2])
        time.sleep(0.5)  # the worker is now inside this request, reading the body
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        s.sendall(body[len(body) // 2:])
        response = HTTPResponse(s)
        response.begin()
        answer = response.read()
    assert response.status == 200, answer
    check_openapi("/invocations", "POST", response.status, response.getheader("Content-Type"), answer)
    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    text = log.read_text()
    assert "Handling signal: term" in text
    # workers exit cleanly: no C++ abort at interpreter shutdown (seen when the master
    # imported onnxruntime before forking)
    assert "SIGABRT" not in text and "terminate called" not in text, text[-2000:]


def test_verdicts_follow_the_cards_thresholds_unless_the_environment_overrides_them(
        trained_model, bin_jpegs, tmp_path):
    """The override wins in every worker and is logged once, at start, by the master."""
    card = ModelCard.read(trained_model)
    asks = [(jpeg, expected) for jpeg in bin_jpegs.values() for expected in (1, 5)]

    def verdicts(url: str) -> list[tuple[float, int, str]]:
        out = []
        for jpeg, expected in asks:
            reply = http(url, "/invocations", jpeg, {"Content-Type": "image/jpeg",
                                                     "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={expected}"})
            v = reply.json()["verification"]
            out.append((v["match_probability"], expected, v["verdict"]))
        return out

    proc, url = start_serve(trained_model, tmp_path / "card.log")
    try:
        from_card = verdicts(url)
    finally:
        stop(proc)
    assert all(verdict == card.verification.verdict(p, expected) for p, expected, verdict in from_card)
    assert {v for _, _, v in from_card} != {"review"}  # so the override below changes something
    log = tmp_path / "override.log"
    proc, url = start_serve(trained_model, log, MODEL_SERVER_WORKERS="2",
                            BINCOUNTER_VERIFY_MATCH_AT="1", BINCOUNTER_VERIFY_MISMATCH_AT="0")
    try:
        overridden = verdicts(url)
    finally:
        stop(proc)
    assert [v for _, _, v in overridden] == ["review"] * len(asks)  # every p is strictly inside 0..1
    assert log.read_text().count("BINCOUNTER_VERIFY_* replaces model.json's thresholds") == 1


def test_the_platform_argument_serve_is_accepted(trained_model, tmp_path):
    """SageMaker runs ``docker run IMAGE serve``: with ENTRYPOINT serve that is ``serve serve``."""
    proc, url = launch_serve(trained_model, tmp_path / "serve.log", args=("serve",))
    try:
        wait_for_ping(url, proc)
    finally:
        assert stop(proc, group=False) == 0


def test_an_unknown_argument_is_refused_with_usage():
    out = subprocess.run([SERVE, "--port", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "usage: serve" in out.stderr


def test_a_missing_model_stops_serve_before_any_worker_starts(tmp_path):
    proc, _ = launch_serve(tmp_path, tmp_path / "serve.log")
    assert proc.wait(timeout=60) == 1
    text = (tmp_path / "serve.log").read_text()
    assert f"cannot serve: cannot read {tmp_path / 'model.json'}" in text
    assert "Booting worker" not in text


def test_a_model_that_fails_to_load_stops_serve_instead_of_pinging_503_forever(trained_model, tmp_path):
    model_dir = shutil.copytree(trained_model, tmp_path / "model")
    (model_dir / "model.onnx").write_bytes(b"\x08\x07garbage that is no ONNX graph")
    proc, _ = launch_serve(model_dir, tmp_path / "serve.log")
    assert proc.wait(timeout=60) != 0
    text = (tmp_path / "serve.log").read_text()
    assert "model failed to load: ONNX Runtime cannot load" in text
    assert "Worker failed to boot" in text
