"""Batch Transform mode (SAGEMAKER_BATCH=true) against the real ``serve`` process:
/execution-parameters, one bad record never fails a mini-batch, ids and expected
quantities come back on their lines, the job's payload limit. Real time keeps its 4xx."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.client import HTTPConnection

import pytest
from PIL import Image
from serving_helpers import call, http, loaded_app

from bincounter.modelcard import ModelCard
from bincounter.serving.contract import MAX_INSTANCES
from bincounter.serving.settings import ServeSettings, SettingsError
from devtools.hostile_images import encode, jpeg_bomb
from devtools.local_serve import start_serve, stop

JSONLINES = {"Content-Type": "application/jsonlines"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def truncated_jpeg() -> bytes:
    good = encode(Image.new("RGB", (320, 240), (90, 140, 200)), "JPEG", quality=90)
    return good[: len(good) // 2]


@pytest.fixture(scope="module")
def batch_server(trained_model, tmp_path_factory):
    """``serve`` as SageMaker starts it for a transform job (the variables it sets)."""
    log = tmp_path_factory.mktemp("serve-batch") / "serve.log"
    proc, url = start_serve(trained_model, log, SAGEMAKER_BATCH="true", SAGEMAKER_MAX_PAYLOAD_IN_MB="3",
                            SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD", SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="1")
    try:
        yield proc, url
    finally:
        stop(proc)


def ten_records(bin_jpegs) -> tuple[bytes, list[dict]]:
    """Ten jsonlines records with ids and expected quantities; the 7th is a truncated JPEG."""
    records = [{"id": f"bin-{i:02d}", "image": b64(bin_jpegs[1 + i % 5]), "expected_quantity": 1 + i % 5}
               for i in range(10)]
    records[6]["image"] = b64(truncated_jpeg())
    return "".join(json.dumps(r) + "\n" for r in records).encode(), records


def test_execution_parameters_offer_one_transform_per_worker_within_sagemakers_limits(random_model_dir):
    two = call(loaded_app(ServeSettings(model_dir=random_model_dir, workers=2)).test_client(),
               "/execution-parameters")
    assert two.status == 200
    assert two.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
    # MaxConcurrentTransforms x MaxPayloadInMB must stay within 100
    assert ServeSettings(workers=48).execution_parameters() == {
        "MaxConcurrentTransforms": 48, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2}
    assert ServeSettings(workers=128).execution_parameters()["MaxConcurrentTransforms"] == 100


def test_batch_settings_come_from_the_variables_sagemaker_sets():
    s = ServeSettings.from_env({"SAGEMAKER_BATCH": "True", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
                                "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
                                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4"})
    assert (s.batch, s.max_body_bytes) == (True, 20 * 1024 * 1024)
    assert s.timeout == 600  # batch's per-invocation limit, not real time's 60 s
    assert ServeSettings.from_env({"SAGEMAKER_BATCH": "true", "MODEL_SERVER_TIMEOUT": "900"}).timeout == 900
    assert ServeSettings.from_env({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}
                                  ).max_body_bytes == 100 * 1024 * 1024  # chunked: still bounded
    realtime = ServeSettings.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"})
    assert (realtime.batch, realtime.max_body_bytes, realtime.timeout) == (False, 6_291_456, 60)
    for bad in ({"SAGEMAKER_BATCH": "maybe"}, {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "101"}):
        with pytest.raises(SettingsError):
            ServeSettings.from_env(bad)


@pytest.mark.slow
def test_a_batch_of_ten_with_a_truncated_jpeg_answers_nine_predictions_and_one_error_record(
        batch_server, live_server, bin_jpegs, trained_model):
    body, records = ten_records(bin_jpegs)
    reply = http(batch_server[1], "/invocations", body, JSONLINES)
    assert reply.status == 200 and reply.content_type == "application/jsonlines"
    answers = [json.loads(line) for line in reply.body.decode().splitlines()]
    assert [a["id"] for a in answers] == [r["id"] for r in records]
    errors = [a for a in answers if "error" in a]
    assert errors == [{"id": "bin-06", "expected_quantity": 2, "status": 400, "error": errors[0]["error"]}]
    assert "line 7" in errors[0]["error"] and "truncated" in errors[0]["error"]
    thresholds = ModelCard.read(trained_model).verification
    for answer, record in zip(answers, records):
        if "error" not in answer:
            v = answer["verification"]
            assert v["expected_quantity"] == record["expected_quantity"]
            assert v["match_probability"] == answer["probabilities"][str(record["expected_quantity"])]
            assert v["verdict"] == thresholds.verdict(v["match_probability"], record["expected_quantity"])
    # real time is unchanged: the same body is one 400 naming the bad line
    realtime = http(live_server[1], "/invocations", body, JSONLINES)
    assert realtime.status == 400 and "line 7" in realtime.json()["error"]


@pytest.mark.slow
def test_batch_answers_equal_real_time_answers_for_the_good_records(batch_server, live_server, bin_jpegs):
    body, records = ten_records(bin_jpegs)
    batch = [json.loads(x) for x in http(batch_server[1], "/invocations", body, JSONLINES).body.splitlines()]
    for answer, record in zip(batch, records):
        if "error" in answer:
            continue
        single = http(live_server[1], "/invocations", base64.b64decode(record["image"]), {
            "Content-Type": "image/jpeg",
            "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={record['expected_quantity']}"}).json()
        assert answer["count"] == single["count"]
        assert answer["verification"]["verdict"] == single["verification"]["verdict"]
        for c, p in single["probabilities"].items():
            assert answer["probabilities"][c] == pytest.approx(p, abs=1e-5)


@pytest.mark.parametrize("content_type, body, status, words", [
    ("image/jpeg", truncated_jpeg(), 400, "truncated"),
    ("image/jpeg", b"", 400, "empty"),
    ("application/x-image", jpeg_bomb(), 413, "pixels"),
    ("application/json", b'{"image": ', 400, "JSON"),
])
@pytest.mark.slow
def test_a_bad_raw_image_or_json_body_is_one_error_record_with_200_in_batch_mode(
        batch_server, live_server, content_type, body, status, words):
    reply = http(batch_server[1], "/invocations", body, {"Content-Type": content_type})
    assert reply.status == 200, reply.body[:300]
    answer = reply.json()
    assert answer["status"] == status and words.lower() in answer["error"].lower(), answer
    realtime = http(live_server[1], "/invocations", body, {"Content-Type": content_type})
    assert realtime.status == status


@pytest.mark.slow
def test_every_kind_of_bad_line_gets_its_own_error_record_with_what_could_be_read(batch_server, bin_jpegs):
    good = b64(bin_jpegs[3])
    lines = [json.dumps({"id": "ok", "image": good}), "{oops",
             json.dumps({"id": "no-image", "expected_quantity": 2}),
             json.dumps({"id": 17, "image": "not*base64!", "expected_quantity": 4}),
             json.dumps({"id": "nine", "image": good, "expected_quantity": 9}),
             json.dumps({"id": ["a list"], "image": good}),
             json.dumps(["not", "an", "object"]),
             json.dumps({"id": "last", "image": good, "expected_quantity": 3})]
    reply = http(batch_server[1], "/invocations", "\n".join(lines).encode(), JSONLINES)
    assert reply.status == 200
    answers = [json.loads(x) for x in reply.body.splitlines()]
    assert len(answers) == len(lines)
    assert answers[0]["id"] == "ok" and "count" in answers[0]
    assert "error" in answers[1] and "line 2" in answers[1]["error"] and "id" not in answers[1]
    assert answers[2] == {"id": "no-image", "expected_quantity": 2, "status": 400,
                          "error": answers[2]["error"]} and "image" in answers[2]["error"]
    assert (answers[3]["id"], answers[3]["expected_quantity"]) == (17, 4) and "base64" in answers[3]["error"]
    assert answers[4]["id"] == "nine" and "outside the counts" in answers[4]["error"]
    assert "id" not in answers[5] and '"id" must be' in answers[5]["error"]
    assert "JSON object" in answers[6]["error"]
    assert answers[7]["id"] == "last" and answers[7]["verification"]["expected_quantity"] == 3


@pytest.mark.slow
def test_a_payload_of_many_small_images_is_answered_in_full(batch_server, live_server, bin_jpegs):
    """Batch Transform packs as many lines as MaxPayloadInMB holds: no per-request cap applies
    (the handler runs them 32 at a time); real time keeps its cap."""
    n = MAX_INSTANCES + 72
    lines = "".join(json.dumps({"id": i, "image": b64(bin_jpegs[1 + i % 5])}) + "\n" for i in range(n))
    reply = http(batch_server[1], "/invocations", lines.encode(), JSONLINES)
    answers = [json.loads(x) for x in reply.body.splitlines()]
    assert reply.status == 200 and [a["id"] for a in answers] == list(range(n))
    assert all("count" in a for a in answers)
    assert http(live_server[1], "/invocations", lines.encode(), JSONLINES).status == 413


@pytest.mark.slow
def test_the_body_limit_is_the_jobs_max_payload_and_names_it(batch_server, live_server):
    over = b"\xff" * (3 * 1024 * 1024 + 1)  # the batch server runs with SAGEMAKER_MAX_PAYLOAD_IN_MB=3
    reply = http(batch_server[1], "/invocations", over, {"Content-Type": "image/jpeg"})
    assert reply.status == 413 and "3145728" in reply.json()["error"]
    assert http(live_server[1], "/invocations", over, {"Content-Type": "image/jpeg"}).status == 400


@pytest.mark.slow
def test_an_empty_jsonlines_payload_answers_no_records_in_batch_mode(batch_server, live_server):
    reply = http(batch_server[1], "/invocations", b"\n\n", JSONLINES)
    assert (reply.status, reply.body) == (200, b"")
    assert http(live_server[1], "/invocations", b"\n\n", JSONLINES).status == 400


@pytest.mark.slow
def test_ping_answers_within_2_s_while_the_only_worker_counts_a_long_mini_batch(batch_server, bin_jpegs):
    """SageMaker pings during a job; the worker's second (gthread) thread answers it."""
    url = batch_server[1]
    lines, size, i = [], 0, 0
    while size < 3 * 1024 * 1024 - 10_000:  # just within the job's payload
        lines.append(json.dumps({"id": i, "image": b64(bin_jpegs[1 + i % 5])}) + "\n")
        size, i = size + len(lines[-1]), i + 1
    body = "".join(lines).encode()
    finished = {}

    def count() -> None:
        reply = http(url, "/invocations", body, JSONLINES, timeout=300)
        finished.update(status=reply.status, at=time.monotonic())

    started = time.monotonic()
    worker = threading.Thread(target=count)
    worker.start()
    time.sleep(0.5)
    sent = time.monotonic()
    ping = http(url, "/ping", timeout=2)
    answered = time.monotonic()
    worker.join()
    print(f"\nping answered in {answered - sent:.3f} s, {answered - started:.1f} s into a "
          f"{finished['at'] - started:.1f} s mini-batch")
    assert ping.status == 200 and answered - sent < 2.0
    assert finished == {"status": 200, "at": finished["at"]} and finished["at"] > answered


@pytest.mark.slow
def test_sigterm_stops_a_batch_server_at_once_after_keep_alive_requests(trained_model, bin_jpegs, tmp_path):
    """The SDK's local mode (and Batch Transform's agent) reuse connections; gunicorn must not
    wait out its graceful timeout for them."""
    proc, url = start_serve(trained_model, tmp_path / "serve.log", SAGEMAKER_BATCH="true")
    try:
        conn = HTTPConnection(url.removeprefix("http://"), timeout=30)
        for _ in range(3):
            conn.request("POST", "/invocations", body=bin_jpegs[2], headers={"Content-Type": "image/jpeg"})
            assert conn.getresponse().read()
    finally:
        start = time.monotonic()
        code = stop(proc)
    assert code == 0 and time.monotonic() - start < 5.0
