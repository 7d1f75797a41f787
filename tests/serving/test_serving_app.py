"""The Flask app on the session's tiny trained model, through Flask's test client:
content types, batches, jsonlines, Accept, verification, readiness, request log.
Every reply is checked against openapi.json by ``call``."""

from __future__ import annotations

import base64
import json
import logging
import shutil

import pytest
from PIL import Image
from serving_helpers import OPENAPI, call, loaded_app

from bincounter.modelcard import ModelCard
from bincounter.serving.app import create_app
from bincounter.serving.handler import Instance, ModelHandler
from bincounter.serving.settings import ServeSettings
from devtools.hostile_images import encode

pytestmark = pytest.mark.slow  # the session's model is trained by the toolkit


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_prediction(pred: dict, classes: list[int]) -> None:
    probs = [pred["probabilities"][str(c)] for c in classes]
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert pred["count"] == classes[probs.index(max(probs))]
    assert pred["confidence"] == pytest.approx(max(probs))
    assert pred["expected_count"] == pytest.approx(sum(c * p for c, p in zip(classes, probs)))


def test_ping_is_200_with_an_empty_body_once_the_model_is_loaded(client):
    reply = call(client, "/ping")
    assert (reply.status, reply.body) == (200, b"")


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/x-image"])
def test_raw_jpeg_bytes_give_one_prediction(client, bin_jpegs, trained_model, content_type):
    reply = call(client, "/invocations", bin_jpegs[3], {"Content-Type": content_type})
    assert reply.status == 200 and reply.content_type == "application/json"
    assert_prediction(reply.json(), ModelCard.read(trained_model).classes)


def test_png_gives_the_same_prediction_as_the_decoded_pixels(client, bin_jpegs):
    # The PNG holds exactly the pixels the JPEG decodes to, so the model sees the same input.
    import io
    png = encode(Image.open(io.BytesIO(bin_jpegs[2])).convert("RGB"), "PNG")
    as_png = call(client, "/invocations", png, {"Content-Type": "image/png"}).json()
    as_jpeg = call(client, "/invocations", bin_jpegs[2], {"Content-Type": "image/jpeg"}).json()
    for c, p in as_jpeg["probabilities"].items():
        assert as_png["probabilities"][c] == pytest.approx(p, abs=1e-5)


def test_json_jsonlines_and_raw_bytes_agree_on_the_same_image(client, bin_jpegs):
    raw = call(client, "/invocations", bin_jpegs[4], {"Content-Type": "image/jpeg"}).json()
    as_json = call(client, "/invocations", json.dumps({"image": b64(bin_jpegs[4])}).encode(),
                   {"Content-Type": "application/json; charset=utf-8"}).json()
    as_line = call(client, "/invocations", json.dumps({"image": b64(bin_jpegs[4])}).encode(),
                   {"Content-Type": "application/jsonlines"})
    assert as_line.content_type == "application/jsonlines"
    assert raw == as_json == json.loads(as_line.body)


def test_a_json_batch_answers_predictions_in_request_order(client, bin_jpegs):
    counts = [5, 1, 3, 1]
    body = json.dumps({"instances": [{"image": b64(bin_jpegs[c])} for c in counts]}).encode()
    batch = call(client, "/invocations", body, {"Content-Type": "application/json"}).json()
    singles = [call(client, "/invocations", bin_jpegs[c], {"Content-Type": "image/jpeg"}).json()
               for c in counts]
    assert len(batch["predictions"]) == len(counts)
    for got, want in zip(batch["predictions"], singles):
        assert got["count"] == want["count"]
        for c, p in want["probabilities"].items():
            assert got["probabilities"][c] == pytest.approx(p, abs=1e-5)


def test_jsonlines_in_gives_jsonlines_out_one_line_per_record(client, bin_jpegs):
    lines = "".join(json.dumps({"image": b64(bin_jpegs[c])}) + "\n" for c in (1, 2, 3)) + "\n"
    reply = call(client, "/invocations", lines.encode(), {"Content-Type": "application/jsonlines"})
    assert reply.status == 200 and reply.content_type == "application/jsonlines"
    assert len(reply.body.decode().splitlines()) == 3
    as_json = call(client, "/invocations", lines.encode(),
                   {"Content-Type": "application/jsonlines", "Accept": "application/json"})
    assert [json.loads(x) for x in reply.body.decode().splitlines()] == as_json.json()["predictions"]


@pytest.mark.parametrize("accept, status, produced", [
    ("*/*", 200, "application/json"),
    ("application/json", 200, "application/json"),
    ("application/jsonlines", 200, "application/jsonlines"),
    ("text/html, application/*;q=0.5", 200, "application/json"),
    ("text/csv", 406, "application/json"),
    ("image/png", 406, "application/json"),
])
def test_accept_header_picks_the_response_type_or_406(client, bin_jpegs, accept, status, produced):
    reply = call(client, "/invocations", bin_jpegs[1], {"Content-Type": "image/jpeg", "Accept": accept})
    assert (reply.status, reply.content_type) == (status, produced)
    if status == 406:
        assert "text" in reply.json()["error"] or "image" in reply.json()["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "multipart/form-data", None])
def test_an_unsupported_content_type_is_415(client, bin_jpegs, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    reply = call(client, "/invocations", bin_jpegs[1], headers)
    assert reply.status == 415 and "Content-Type" in reply.json()["error"]


def test_verification_from_the_custom_attributes_header(client, bin_jpegs, trained_model):
    thresholds = ModelCard.read(trained_model).verification
    for expected in (1, 3, 5):
        pred = call(client, "/invocations", bin_jpegs[3], {
            "Content-Type": "image/jpeg",
            "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={expected}"}).json()
        v = pred["verification"]
        assert v["expected_quantity"] == expected
        assert v["match_probability"] == pred["probabilities"][str(expected)]
        assert v["verdict"] == thresholds.verdict(v["match_probability"], expected)


def test_expected_quantity_in_json_wins_over_the_header_per_instance(client, bin_jpegs):
    body = json.dumps({"expected_quantity": 2, "instances": [
        {"image": b64(bin_jpegs[1])}, {"image": b64(bin_jpegs[1]), "expected_quantity": 4}]}).encode()
    preds = call(client, "/invocations", body, {
        "Content-Type": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "expected_quantity=5"}).json()["predictions"]
    assert [p["verification"]["expected_quantity"] for p in preds] == [2, 4]


def test_no_expected_quantity_means_no_verification(client, bin_jpegs):
    assert "verification" not in call(client, "/invocations", bin_jpegs[2],
                                      {"Content-Type": "image/jpeg"}).json()


@pytest.mark.parametrize("given", ["9", "-1", "2.5"])
def test_an_expected_quantity_the_model_cannot_verify_is_400(client, bin_jpegs, given):
    reply = call(client, "/invocations", bin_jpegs[2], {
        "Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={given}"})
    assert reply.status == 400 and "expected_quantity" in reply.json()["error"]


def test_verdicts_follow_thresholds_from_the_environment(trained_model, bin_jpegs):
    probe = loaded_app(ServeSettings(model_dir=trained_model)).test_client()
    # a (photo, expected count) whose probability leaves room for thresholds on both sides
    candidates = [(q, image, call(probe, "/invocations", image, {"Content-Type": "image/jpeg"})
                   .json()["probabilities"][str(q)]) for image in bin_jpegs.values() for q in range(1, 6)]
    q, image, p = next((c for c in candidates if 0.01 <= c[2] <= 0.99), (None, None, None))
    assert q is not None, "the tiny model gives no probability between 0.01 and 0.99"
    headers = {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={q}"}
    # thresholds placed just around p force each verdict in turn
    for match_at, mismatch_at, verdict in [(p - 1e-3, max(0.0, p - 2e-3), "match"),
                                           (min(1.0, p + 2e-3), p + 1e-3, "mismatch"),
                                           (min(1.0, p + 2e-3), max(0.0, p - 2e-3), "review")]:
        app = loaded_app(ServeSettings(model_dir=trained_model, match_at=match_at, mismatch_at=mismatch_at))
        got = call(app.test_client(), "/invocations", image, headers).json()["verification"]
        assert got["verdict"] == verdict, (p, match_at, mismatch_at)


def test_each_expected_count_is_answered_with_its_own_thresholds(trained_model, bin_jpegs, tmp_path):
    model_dir = shutil.copytree(trained_model, tmp_path / "model")
    image = bin_jpegs[3]
    probe = loaded_app(ServeSettings(model_dir=model_dir)).test_client()
    p = call(probe, "/invocations", image, {"Content-Type": "image/jpeg"}).json()["probabilities"]
    # thresholds around each count's own p: odd counts are made matches, even ones mismatches
    per_count = {c: ({"match_at": max(0.0, p[c] - 1e-6), "mismatch_at": None} if int(c) % 2 else
                     {"match_at": None, "mismatch_at": min(1.0, p[c] + 1e-6)}) for c in p}
    doc = json.loads((model_dir / "model.json").read_text())
    doc["verification"].update(match_at=None, mismatch_at=None, per_count=per_count)
    (model_dir / "model.json").write_text(json.dumps(doc))
    client = loaded_app(ServeSettings(model_dir=model_dir)).test_client()
    for expected in (1, 2, 3, 4, 5):
        v = call(client, "/invocations", image, {
            "Content-Type": "image/jpeg",
            "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={expected}"}).json()["verification"]
        assert v["verdict"] == ("match" if expected % 2 else "mismatch"), (expected, p)


def test_a_one_pair_card_from_before_serves_every_count_with_its_pair(trained_model, bin_jpegs, tmp_path):
    model_dir = shutil.copytree(trained_model, tmp_path / "model")
    doc = json.loads((model_dir / "model.json").read_text())
    doc["schema_version"] = 2  # before per-count thresholds: one pair for every count
    doc["verification"] = {"match_at": 0.999999, "mismatch_at": 0.0}  # nothing is certain enough
    (model_dir / "model.json").write_text(json.dumps(doc))
    client = loaded_app(ServeSettings(model_dir=model_dir)).test_client()
    for expected in (1, 2, 3, 4, 5):
        v = call(client, "/invocations", bin_jpegs[expected], {
            "Content-Type": "image/jpeg",
            "X-Amzn-SageMaker-Custom-Attributes": f"expected_quantity={expected}"}).json()["verification"]
        assert v["verdict"] == "review", v


def test_a_model_that_cannot_load_keeps_ping_and_invocations_at_503(trained_model, bin_jpegs, tmp_path):
    model_dir = shutil.copytree(trained_model, tmp_path / "model")
    (model_dir / "model.onnx").write_bytes(b"not an onnx graph")
    app = create_app(ServeSettings(model_dir=model_dir))
    assert app.extensions["bincounter.model"].wait(60)
    client = app.test_client()
    ping = call(client, "/ping")
    assert ping.status == 503 and "model failed to load" in ping.json()["error"]
    reply = call(client, "/invocations", bin_jpegs[1], {"Content-Type": "image/jpeg"})
    assert reply.status == 503 and "ONNX Runtime cannot load" in reply.json()["error"]


def test_the_openapi_document_is_served(client):
    reply = call(client, "/openapi.json")
    assert reply.status == 200 and reply.json() == OPENAPI


def test_every_request_logs_one_line_with_id_type_bytes_status_latency(client, bin_jpegs, caplog):
    caplog.set_level(logging.INFO, logger="bincounter.serving.app")
    ok = call(client, "/invocations", bin_jpegs[1], {"Content-Type": "image/jpeg", "X-Request-Id": "req-42"})
    bad = call(client, "/invocations", b"garbage", {"Content-Type": "image/jpeg"})
    lines = [r.getMessage() for r in caplog.records if r.name == "bincounter.serving.app"]
    assert len(lines) == 2
    assert ok.headers["X-Request-Id"] == "req-42"
    assert lines[0].startswith("request id=req-42 POST /invocations content_type=image/jpeg "
                               f"bytes={len(bin_jpegs[1])} status=200 latency_ms=")
    assert f"id={bad.headers['X-Request-Id']} " in lines[1] and "status=400" in lines[1]


def test_the_handler_counts_without_any_web_server(client, trained_model, bin_jpegs):
    handler = ModelHandler.load(trained_model)
    [pred] = handler.handle([Instance(bin_jpegs[4], expected_quantity=4)])
    served = call(client, "/invocations", bin_jpegs[4], {
        "Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "expected_quantity=4"}).json()
    assert pred == served


def test_a_body_expected_quantity_of_zero_is_not_mistaken_for_absent(client, bin_jpegs):
    body = json.dumps({"expected_quantity": 0, "instances": [{"image": b64(bin_jpegs[1])}]}).encode()
    reply = call(client, "/invocations", body, {
        "Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "expected_quantity=1"})
    assert reply.status == 400 and "expected_quantity 0" in reply.json()["error"]
