"""The Lambda's stdlib-only copies of the serving contract equal the server's own."""

from __future__ import annotations

import base64

import lambda_events
import pytest

from bincounter.serving import contract


def test_the_lambda_limit_is_the_servers_body_limit():
    assert lambda_events.MAX_IMAGE_BYTES == contract.MAX_BODY_BYTES


def test_the_lambda_sends_only_image_types_the_server_accepts():
    assert lambda_events.SERVER_IMAGE_TYPES == contract.RAW_IMAGE_TYPES
    assert set(lambda_events.IMAGE_TYPES) - set(contract.RAW_IMAGE_TYPES) == {"application/octet-stream"}


@pytest.mark.parametrize("named", ["image/gif", "image/webp", "image/tiff", "image/bmp"])
def test_a_type_the_server_refuses_is_refused_by_the_lambda_with_415_naming_the_accepted_ones(named):
    event = {"image_b64": base64.b64encode(b"GIF89a" + b"\0" * 10).decode(), "content_type": named}
    with pytest.raises(lambda_events.BadRequest) as caught:
        lambda_events.parse_event(event)
    assert caught.value.status == 415 and named in str(caught.value)
    assert all(t in str(caught.value) for t in contract.RAW_IMAGE_TYPES)


@pytest.mark.parametrize("data, sent", [(b"\xff\xd8\xff\xe0", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
                                        (b"GIF89a", "application/x-image"), (b"RIFF\0\0\0\0WEBP", "application/x-image")])
def test_bytes_without_a_server_type_go_on_as_a_type_the_server_accepts(data, sent):
    request = lambda_events.parse_event({"image_b64": base64.b64encode(data + b"\0" * 10).decode(),
                                         "content_type": "application/octet-stream"})
    assert request.content_type == sent in contract.RAW_IMAGE_TYPES
