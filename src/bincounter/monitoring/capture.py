"""SageMaker's data capture format, written once: the emulator writes it, the monitor reads it.

One JSON line per request, in files under ``DEST/ENDPOINT/VARIANT/yyyy/mm/dd/hh/``
(the AWS developer guide, "Capture data from real-time endpoint"; docs/platform.md §8)::

    {"captureData": {"endpointInput": {"observedContentType": "image/jpeg", "mode": "INPUT",
                                       "data": "...", "encoding": "BASE64"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "{...}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-12-03T08:00:00Z", "inferenceId": "..."},
     "eventVersion": "0"}

``endpointInput`` is there only when the capture mode includes Input. A content type the
endpoint config declares in ``CaptureContentTypeHeader.JsonContentTypes`` is stored with
encoding JSON (the text as is), CSV types as CSV, anything else BASE64.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

# what orchestrate deploy declares as JSON (so the answers are stored readable, not BASE64)
JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")
EVENT_VERSION = "0"


class CaptureError(ValueError):
    """A capture line that cannot be read: the reason, for the report's list of bad lines."""


def _encode(body: bytes, content_type: str, json_types: Iterable[str]) -> tuple[str, str]:
    base = content_type.split(";")[0].strip().lower()
    if base in json_types:
        try:
            return body.decode("utf-8"), "JSON"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "BASE64"


def line(output: bytes, output_type: str, *, input_body: bytes | None = None, input_type: str = "",
         when: datetime | None = None, inference_id: str = "",
         json_types: Iterable[str] = JSON_CONTENT_TYPES) -> str:
    """One capture line for one request (``input_body`` None: capture mode Output only)."""
    json_types = tuple(json_types)
    data: dict = {}
    if input_body is not None:
        text, enc = _encode(input_body, input_type, json_types)
        data["endpointInput"] = {"observedContentType": input_type, "mode": "INPUT", "data": text, "encoding": enc}
    text, enc = _encode(output, output_type, json_types)
    data["endpointOutput"] = {"observedContentType": output_type, "mode": "OUTPUT", "data": text, "encoding": enc}
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    meta = {"eventId": str(uuid.uuid4()), "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps({"captureData": data, "eventMetadata": meta, "eventVersion": EVENT_VERSION})


def folder(endpoint: str, variant: str, when: datetime) -> str:
    """``ENDPOINT/VARIANT/yyyy/mm/dd/hh`` (UTC), where a line of that hour is written."""
    return f"{endpoint}/{variant}/{when.astimezone(timezone.utc):%Y/%m/%d/%H}"


def hour_of(key: str) -> datetime | None:
    """The UTC hour a capture file's key names (``.../yyyy/mm/dd/hh/file.jsonl``), else None."""
    parts = key.split("/")
    try:
        y, m, d, h = (int(p) for p in parts[-5:-1])
        return datetime(y, m, d, h, tzinfo=timezone.utc)
    except (ValueError, TypeError):
        return None


def _decode(doc: dict, what: str) -> tuple[str, str]:
    """(content type, text) of ``endpointInput`` / ``endpointOutput``."""
    part = doc.get("captureData", {}).get(what)
    if not isinstance(part, dict):
        raise CaptureError(f"no captureData.{what}")
    ctype, data, enc = part.get("observedContentType", ""), part.get("data"), part.get("encoding")
    if not isinstance(data, str):
        raise CaptureError(f"captureData.{what}.data is not text")
    if enc == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise CaptureError(f"captureData.{what}: BASE64 data that is not UTF-8 text: {exc}") from None
    elif enc not in ("JSON", "CSV"):
        raise CaptureError(f"captureData.{what}.encoding {enc!r} is not JSON, CSV or BASE64")
    return str(ctype).split(";")[0].strip().lower(), data


def answers(text: str) -> list[dict]:
    """The answers of our server in one capture line's output: one object, ``{"predictions":
    [...]}``, or JSON lines; an error answer (``{"error": ...}``) is returned as it is."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CaptureError(f"not a JSON line: {exc}") from None
    if not isinstance(doc, dict):
        raise CaptureError("not a JSON object")
    ctype, data = _decode(doc, "endpointOutput")
    if ctype == "application/jsonlines":
        try:
            found = [json.loads(x) for x in data.splitlines() if x.strip()]
        except ValueError as exc:
            raise CaptureError(f"endpointOutput: a JSON line that does not parse: {exc}") from None
    elif ctype == "application/json":
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise CaptureError(f"endpointOutput is not JSON: {exc}") from None
        found = body.get("predictions") if isinstance(body, dict) and "predictions" in body else [body]
    else:
        raise CaptureError(f"endpointOutput content type {ctype!r} is not one the server answers")
    if not isinstance(found, list) or not all(isinstance(a, dict) for a in found):
        raise CaptureError("endpointOutput holds no answer objects")
    return found


@dataclass
class Window:
    """What a window of capture lines held: the answers, and every line that could not be
    read, named (``where``: file and line number) with its reason."""

    lines: int = 0
    answers: list[dict] = field(default_factory=list)
    errors: int = 0                       # answers that were errors (a 4xx the endpoint returned)
    bad: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        if not text.strip():
            return
        self.lines += 1
        try:
            found = answers(text)
        except CaptureError as exc:
            self.bad.append((where, str(exc)))
            return
        for a in found:
            if "error" in a:
                self.errors += 1
            elif isinstance(a.get("probabilities"), dict):
                self.answers.append(a)
            else:
                self.bad.append((where, "an answer without probabilities"))
