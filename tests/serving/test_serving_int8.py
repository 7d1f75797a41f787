"""The server serves whichever ONNX file model.json names: the int8 twin's answers over
HTTP equal ONNX Runtime's on the same preprocessed input."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from serving_helpers import http, loaded_app

from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, ONNX_INPUT, ONNX_OUTPUT, ModelCard
from bincounter.preprocess import preprocess_bytes
from bincounter.serving.settings import ServeSettings
from devtools.local_serve import start_serve, stop

pytestmark = pytest.mark.slow


def onnx_runtime(path, jpegs: list[bytes], card: ModelCard) -> np.ndarray:
    """ONNX Runtime alone (its default session) on the shared preprocessing's arrays."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.stack([preprocess_bytes(j, card.preprocess) for j in jpegs])
    return session.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]


def served(url_or_client, jpegs: list[bytes], classes: list[int]) -> np.ndarray:
    rows = []
    for jpeg in jpegs:
        if isinstance(url_or_client, str):
            reply = http(url_or_client, "/invocations", jpeg, {"Content-Type": "image/jpeg"})
            status, doc = reply.status, reply.json()
        else:
            r = url_or_client.post("/invocations", data=jpeg, headers={"Content-Type": "image/jpeg"})
            status, doc = r.status_code, r.get_json()
        assert status == 200, doc
        rows.append([doc["probabilities"][str(c)] for c in classes])
    return np.asarray(rows)


def test_serve_on_an_int8_card_answers_as_onnx_runtime_runs_the_int8_graph(int8_model, real_jpegs, tmp_path):
    card = ModelCard.read(int8_model)
    int8 = onnx_runtime(int8_model / MODEL_INT8_ONNX, real_jpegs, card)
    fp32 = onnx_runtime(int8_model / MODEL_ONNX, real_jpegs, card)
    proc, url = start_serve(int8_model, tmp_path / "serve.log")
    try:
        got = served(url, real_jpegs, card.classes)
    finally:
        stop(proc)
    np.testing.assert_allclose(got, int8, rtol=0, atol=1e-6)
    assert np.abs(got - fp32).max() > 1e-4  # int8 answers, not the fp32 graph beside it


def test_the_same_files_under_the_card_that_names_fp32_answer_as_fp32(quantized_model, real_jpegs):
    card = ModelCard.read(quantized_model)
    assert card.onnx_file == MODEL_ONNX
    client = loaded_app(ServeSettings(model_dir=quantized_model)).test_client()
    got = served(client, real_jpegs, card.classes)
    np.testing.assert_allclose(got, onnx_runtime(quantized_model / MODEL_ONNX, real_jpegs, card),
                               rtol=0, atol=1e-5)
