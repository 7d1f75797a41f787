"""The codec's two modes, without a server: real time fails a request on its first bad
record; batch mode (``isolate``) answers each bad record with a ``Rejected`` item and
keeps every other one, in order, with whatever id and quantity it still carries."""

from __future__ import annotations

import base64
import json

import pytest

from bincounter.serving.codec import decode_request
from bincounter.serving.errors import BadRequest, PayloadTooLarge
from bincounter.serving.handler import Instance, Rejected

IMAGE = b"\xff\xd8 any bytes: decoding the image is the handler's job"
GOOD = json.dumps({"image": base64.b64encode(IMAGE).decode(), "id": "a", "expected_quantity": 2})
NOT_JSON = "{not json"
NO_IMAGE = json.dumps({"id": 7, "expected_quantity": 3})
BAD_BASE64 = json.dumps({"image": "%%%", "id": "c"})
BODY = "\n".join([GOOD, NOT_JSON, NO_IMAGE, BAD_BASE64]).encode()


def test_a_batch_answers_every_record_and_rejects_only_the_bad_ones():
    items, single = decode_request("application/jsonlines", BODY, default_quantity=4, isolate=True)
    assert not single and [type(i) for i in items] == [Instance, Rejected, Rejected, Rejected]
    assert (items[0].image, items[0].id, items[0].expected_quantity) == (IMAGE, "a", 2)
    assert "line 2 is not valid JSON" in str(items[1].error)
    # what a bad record still says about itself comes back on its error record
    assert (items[2].id, items[2].expected_quantity) == (7, 3) and "no \"image\" field" in str(items[2].error)
    assert (items[3].id, items[3].expected_quantity) == ("c", 4) and "not valid base64" in str(items[3].error)


def test_real_time_fails_the_request_on_its_first_bad_record():
    with pytest.raises(BadRequest, match="line 2 is not valid JSON"):
        decode_request("application/jsonlines", BODY)


def test_a_batch_json_body_that_is_not_json_is_one_rejected_record():
    items, single = decode_request("application/json", b"{not json", isolate=True)
    assert single and len(items) == 1 and isinstance(items[0], Rejected)
    with pytest.raises(BadRequest):
        decode_request("application/json", b"{not json")


def test_a_batch_is_bounded_by_the_jobs_payload_not_the_real_time_instance_limit():
    body = "\n".join([GOOD] * 3).encode()
    items, _ = decode_request("application/jsonlines", body, max_instances=2, isolate=True)
    assert len(items) == 3 and all(isinstance(i, Instance) for i in items)
    with pytest.raises(PayloadTooLarge, match="3 lines; at most 2"):
        decode_request("application/jsonlines", body, max_instances=2)


def test_an_empty_batch_is_no_records_while_real_time_refuses_it():
    assert decode_request("application/jsonlines", b"\n\n", isolate=True) == ([], False)
    with pytest.raises(BadRequest, match="no lines"):
        decode_request("application/jsonlines", b"\n\n")
