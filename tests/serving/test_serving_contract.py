"""The serving contract without a model: torch-free imports, the OpenAPI document,
the error table, settings from the environment, custom attributes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from openapi_spec_validator import validate as validate_openapi_spec
from serving_helpers import OPENAPI
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from bincounter.modelcard import ModelCardError
from bincounter.preprocess import ImageDecodeError, ImageTooLargeError
from bincounter.serving import contract
from bincounter.serving.codec import MAX_ID_CHARS, quantity_from_attributes
from bincounter.serving.errors import (
    BadRequest,
    ModelNotReady,
    NotAcceptable,
    UnsupportedContentType,
    error_message,
    status_for,
)
from bincounter.serving.settings import ServeSettings, SettingsError
from bincounter.verification import VERDICTS, Thresholds, VerdictRule


def test_the_openapi_documents_limits_and_types_are_the_contracts():
    """openapi.json is written by hand; every limit and type it states has its owner in code."""
    schemas, post = OPENAPI["components"]["schemas"], OPENAPI["paths"]["/invocations"]["post"]
    assert tuple(post["requestBody"]["content"]) == contract.REQUEST_TYPES
    assert schemas["BatchRequest"]["properties"]["instances"]["maxItems"] == contract.MAX_INSTANCES
    for schema in (schemas["Instance"], schemas["BatchRequest"]):
        assert schema["properties"]["expected_quantity"]["maximum"] == contract.MAX_QUANTITY
    for schema in ("Instance", "Prediction", "ErrorRecord"):
        assert schemas[schema]["properties"]["id"]["oneOf"][0]["maxLength"] == MAX_ID_CHARS
    assert set(schemas["Verification"]["properties"]["verdict"]["enum"]) == set(VERDICTS)
    params = schemas["ExecutionParameters"]["properties"]
    assert params["MaxPayloadInMB"]["maximum"] == params["MaxConcurrentTransforms"]["maximum"] \
        == contract.MAX_BATCH_PAYLOAD_MB
    too_large = post["responses"]["413"]["description"]
    assert f"{contract.MAX_BODY_BYTES:,}" in too_large and f"{contract.MAX_INSTANCES} instances" in too_large


def test_importing_the_server_does_not_import_torch():
    code = ("import sys\n"
            "import bincounter.serving.app, bincounter.serving.cli, bincounter.serving.handler\n"
            "import onnxruntime\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_serve_command_starts_with_the_standard_library_only():
    code = ("import sys, bincounter.serving.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'PIL', 'flask', 'onnxruntime', 'torch')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_openapi_document_is_valid_openapi_3_1():
    validate_openapi_spec(OPENAPI)
    assert OPENAPI["openapi"].startswith("3.1")
    assert {"/ping", "/invocations"} <= set(OPENAPI["paths"])


@pytest.mark.parametrize("exc, status", [
    (ImageDecodeError("truncated"), 400),
    (ImageTooLargeError("50000x50000"), 413),
    (BadRequest("bad base64"), 400),
    (UnsupportedContentType("text/csv"), 415),
    (NotAcceptable("text/csv"), 406),
    (ModelNotReady("loading"), 503),
    (ModelCardError("no model.json"), 503),
    (RequestEntityTooLarge(), 413),
    (NotFound(), 404),
    (KeyError("our bug"), 500),
])
def test_error_table_gives_each_exception_its_status(exc, status):
    assert status_for(exc) == status


def test_an_internal_error_does_not_leak_its_details():
    message = error_message(KeyError("secret path /opt/ml/model"), 500)
    assert "secret" not in message and "request id" in message


def test_settings_come_from_the_sagemaker_environment():
    s = ServeSettings.from_env({"SAGEMAKER_BIND_TO_PORT": "9090", "SM_MODEL_DIR": "/m",
                                "MODEL_SERVER_WORKERS": "3", "MODEL_SERVER_THREADS": "4",
                                "MODEL_SERVER_TIMEOUT": "45", "BINCOUNTER_VERIFY_MATCH_AT": "0.8"})
    assert (s.port, str(s.model_dir), s.workers, s.threads, s.timeout, s.match_at) == \
        (9090, "/m", 3, 4, 45, 0.8)
    d = ServeSettings.from_env({})
    assert (d.port, str(d.model_dir), d.timeout, d.graceful_timeout) == (8080, "/opt/ml/model", 60, 25)


@pytest.mark.parametrize("env, named", [
    ({"MODEL_SERVER_WORKERS": "two"}, "MODEL_SERVER_WORKERS"),
    ({"SAGEMAKER_BIND_TO_PORT": "0"}, "SAGEMAKER_BIND_TO_PORT"),
    ({"BINCOUNTER_VERIFY_MATCH_AT": "1.5"}, "BINCOUNTER_VERIFY_MATCH_AT"),
])
def test_a_bad_setting_fails_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        ServeSettings.from_env(env)


def test_env_thresholds_override_model_json_and_are_checked_together():
    card = VerdictRule(Thresholds(match_at=0.5, mismatch_at=0.1))
    assert ServeSettings(match_at=0.9).thresholds(card) == VerdictRule(Thresholds(0.9, 0.1))
    with pytest.raises(SettingsError, match="mismatch_at"):
        ServeSettings(mismatch_at=0.7).thresholds(card)
    # a per-count card: the override sets that side for every count
    per_count = VerdictRule(Thresholds(None, None), ((1, Thresholds(0.6, 0.2)), (2, Thresholds(None, 0.05))))
    assert ServeSettings(match_at=0.9).thresholds(per_count).by_count == {1: Thresholds(0.9, 0.2),
                                                                         2: Thresholds(0.9, 0.05)}


@pytest.mark.parametrize("header, quantity", [
    ("expected_quantity=3", 3),
    ("trace=abc; expected_quantity = 4", 4),
    ("expected_quantity=2,other=x", 2),
    ("trace=abc", None),
    (None, None),
])
def test_expected_quantity_is_read_from_custom_attributes(header, quantity):
    assert quantity_from_attributes(header) == quantity


def test_a_non_numeric_expected_quantity_is_a_bad_request():
    with pytest.raises(BadRequest, match="expected_quantity"):
        quantity_from_attributes("expected_quantity=three")
