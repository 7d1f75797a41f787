"""Parity: the probabilities /invocations returns equal the torch model's, calibrated
by model.json's temperature, on the same real photo within 1e-4 (same weights, same
preprocessing function)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from serving_helpers import http

from bincounter.modelcard import MODEL_PTH, ModelCard
from bincounter.preprocess import preprocess_bytes
from bincounter.training.models import build_model

pytestmark = pytest.mark.slow


def test_served_probabilities_equal_the_torch_model_on_real_photos(live_server, real_jpegs, trained_model):
    _, url = live_server
    card = ModelCard.read(trained_model)
    model = build_model(card.arch, len(card.classes), pretrained=False)
    model.load_state_dict(torch.load(trained_model / MODEL_PTH, map_location="cpu", weights_only=True))
    model.eval()
    batch = torch.from_numpy(np.stack([preprocess_bytes(j, card.preprocess) for j in real_jpegs]))
    with torch.no_grad():
        expected = torch.softmax(model(batch) / card.calibration["temperature"], dim=1).numpy()
    for jpeg, want in zip(real_jpegs, expected):
        reply = http(url, "/invocations", jpeg, {"Content-Type": "image/jpeg"})
        assert reply.status == 200
        got = np.array([reply.json()["probabilities"][str(c)] for c in card.classes])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
