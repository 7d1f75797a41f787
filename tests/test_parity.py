"""Training and serving see the same numbers: preprocessing and ONNX vs torch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bincounter.labels import DEFAULT_RANGE
from bincounter.metadata import scan_dataset
from bincounter.modelcard import ONNX_INPUT, ONNX_OUTPUT, ModelCard
from bincounter.preprocess import PreprocessSpec, preprocess_bytes
from bincounter.training.data import BinDataset
from bincounter.training.models import build_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_images(abid_sample):
    samples, _ = scan_dataset(abid_sample)
    return samples[::331][:10]  # ten real photos spread over the sample


def test_training_dataset_and_serving_preprocess_give_identical_arrays(real_images):
    dataset = BinDataset(real_images, PreprocessSpec(image_size=96), DEFAULT_RANGE.to_index)
    for i, sample in enumerate(real_images):
        x, y = dataset[i]
        served = preprocess_bytes(sample.image_path.read_bytes(), dataset.spec)
        assert np.array_equal(x.numpy(), served)
        assert y == sample.count - 1


def test_onnx_probabilities_are_the_torch_models_softmax_of_logits_over_t(trained_model, real_images):
    """The served graph holds the calibration: probabilities = softmax(logits / T), T from model.json."""
    card = ModelCard.read(trained_model)
    temperature = card.calibration["temperature"]
    assert temperature != 1.0  # a fitted value, or this test could not tell T was applied
    model = build_model(card.arch, len(card.classes), pretrained=False)
    model.load_state_dict(torch.load(trained_model / "model.pth", weights_only=True))
    model.eval()
    batch = np.stack([preprocess_bytes(s.image_path.read_bytes(), card.preprocess) for s in real_images])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(batch)) / temperature, 1).numpy()
    session = ort.InferenceSession(str(trained_model / card.onnx_file), providers=["CPUExecutionProvider"])
    got = session.run([ONNX_OUTPUT], {ONNX_INPUT: batch})[0]
    assert got.shape == (len(real_images), 5)
    assert np.abs(got - expected).max() <= 1e-5
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
