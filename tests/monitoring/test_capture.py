"""SageMaker's data capture lines, as the AWS developer guide documents them, read back."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from bincounter.monitoring import capture

ANSWER = {"count": 3, "probabilities": {"1": 0.05, "2": 0.15, "3": 0.6, "4": 0.15, "5": 0.05},
          "verification": {"expected_quantity": 3, "match_probability": 0.6, "verdict": "review"}}


def _documented(output: dict, encoding: str, content_type: str = "application/json") -> str:
    """A line written by hand in the documented shape (not by ``capture.line``)."""
    text = json.dumps(output)
    data = base64.b64encode(text.encode()).decode() if encoding == "BASE64" else text
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "image/jpeg", "mode": "INPUT", "data": "/9j/4AAQ", "encoding": "BASE64"},
        "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": data, "encoding": encoding}},
        "eventMetadata": {"eventId": "3b4f7a0e-0000-4000-8000-000000000000", "inferenceTime": "2026-12-03T08:15:02Z"},
        "eventVersion": "0"})


@pytest.mark.parametrize("encoding", ["JSON", "BASE64"])
def test_a_documented_line_gives_the_servers_answer_in_either_encoding(encoding):
    assert capture.answers(_documented(ANSWER, encoding)) == [ANSWER]


def test_a_batch_answer_and_json_lines_give_every_prediction():
    assert capture.answers(_documented({"predictions": [ANSWER, ANSWER]}, "JSON")) == [ANSWER, ANSWER]
    lines = json.dumps(ANSWER) + "\n" + json.dumps(ANSWER) + "\n"
    doc = json.loads(_documented(ANSWER, "JSON", "application/jsonlines"))
    doc["captureData"]["endpointOutput"]["data"] = lines
    assert capture.answers(json.dumps(doc)) == [ANSWER, ANSWER]


def test_what_we_write_is_what_we_read_and_sits_in_the_hour_folder():
    when = datetime(2026, 12, 3, 8, 15, tzinfo=timezone.utc)
    written = capture.line(json.dumps(ANSWER).encode(), "application/json", input_body=b"\xff\xd8jpeg",
                           input_type="image/jpeg", when=when)
    doc = json.loads(written)
    assert doc["captureData"]["endpointOutput"]["encoding"] == "JSON"  # declared JSON: stored readable
    assert doc["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert doc["eventMetadata"]["inferenceTime"] == "2026-12-03T08:15:00Z" and doc["eventVersion"] == "0"
    assert capture.answers(written) == [ANSWER]
    key = capture.folder("bincounter", "AllTraffic", when) + "/x.jsonl"
    assert key == "bincounter/AllTraffic/2026/12/03/08/x.jsonl" and capture.hour_of(key) == when.replace(minute=0)
    assert "endpointInput" not in json.loads(capture.line(b"{}", "application/json"))["captureData"]


@pytest.mark.parametrize("text, reason", [
    ('{"captureData": {"endpointOutput": {"observedContentType": "application/json", "da', "not a JSON line"),
    (_documented(ANSWER, "JSON", "text/csv"), "content type 'text/csv'"),
    (json.dumps({"captureData": {}}), "no captureData.endpointOutput"),
    (_documented(ANSWER, "JSON").replace('"encoding": "JSON"', '"encoding": "GZIP"'), "encoding 'GZIP'"),
    (_documented(ANSWER, "BASE64").replace('"data": "ey', '"data": "!!'), "BASE64"),
])
def test_a_line_that_cannot_be_read_is_named_with_its_reason_and_the_rest_are_kept(text, reason):
    window = capture.Window()
    window.add("f.jsonl:1", _documented(ANSWER, "JSON"))
    window.add("f.jsonl:2", text)
    window.add("f.jsonl:3", _documented({"error": "image is truncated"}, "JSON"))
    window.add("f.jsonl:4", "   ")
    assert window.lines == 3 and window.answers == [ANSWER] and window.errors == 1
    assert len(window.bad) == 1 and window.bad[0][0] == "f.jsonl:2" and reason in window.bad[0][1], window.bad
