"""The compose client's verdict on one Lambda answer: exit 0 must mean every answer was sane."""

from __future__ import annotations

import json

import pytest

PROBS = {"1": 0.1, "2": 0.2, "3": 0.4, "4": 0.2, "5": 0.1}


@pytest.fixture
def check_answer():
    from devtools.compose_client import check_answer
    return check_answer


def reply(status=200, **body):
    body = {"count": 3, "probabilities": PROBS,
            "verification": {"expected_quantity": 3, "match_probability": 0.4, "verdict": "review"}, **body}
    return {"statusCode": status, "body": json.dumps(body)}


def test_a_sane_answer_passes(check_answer):
    body, reason = check_answer(reply(), expected=3)
    assert reason is None and body["count"] == 3


@pytest.mark.parametrize("payload, expected, why", [
    ({"statusCode": 502, "body": json.dumps({"error": "model server error"})}, 3, "status 502"),
    (reply(count=7), 3, "count 7 is not one of the classes"),
    (reply(probabilities={**PROBS, "5": 0.6}), 3, "probabilities sum to 1.5000"),
    (reply(), 4, "does not answer expected_quantity=4"),
    (reply(verification={"expected_quantity": 3, "verdict": "maybe"}), 3, "does not answer"),
])
def test_an_insane_answer_fails_with_the_reason(check_answer, payload, expected, why):
    body, reason = check_answer(payload, expected)
    assert body is None and why in reason
