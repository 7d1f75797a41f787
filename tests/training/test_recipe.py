"""The recipe's pieces: augmentation, heads, schedule, and the epoch sampler."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from bincounter.labels import CountRange
from bincounter.modelcard import ModelCard
from bincounter.split import read_manifest
from bincounter.synth import generate
from bincounter.training.data import EpochSampler
from bincounter.training.recipe import CumulativeLogitHead, Head, augment_bin, ordinal_probabilities, warmup_cosine
from toolkit_helpers import TINY, make_opt_ml, run_toolkit_train


def test_augmentation_keeps_size_and_is_a_function_of_its_seed():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    a = augment_bin(image, random.Random(7))
    b = augment_bin(image, random.Random(7))
    c = augment_bin(image, random.Random(8))
    assert a.size == image.size and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_ordinal_head_gives_probabilities_that_are_ordered_and_sum_to_one():
    torch.manual_seed(0)
    head = CumulativeLogitHead(16, 5)
    with torch.no_grad():
        head.raw_gaps.copy_(torch.tensor([-3.0, 2.0, 0.5]))  # uneven gaps, still ordered cuts
        p = ordinal_probabilities(head(torch.randn(64, 16) * 10))
    assert p.shape == (64, 5)
    assert torch.all(p >= 0)
    assert torch.allclose(p.sum(1), torch.ones(64), atol=1e-6)


def test_ordinal_loss_falls_when_the_score_moves_toward_the_true_count():
    head = Head("ordinal")
    cuts = torch.tensor([[-1.5, -0.5, 0.5, 1.5]])
    target = torch.tensor([4])  # the highest class: wants a large score
    losses = [head.criterion(cuts - s, target).item() for s in (-2.0, 0.0, 2.0, 4.0)]
    assert losses == sorted(losses, reverse=True)


def test_unknown_head_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown head 'coral'"):
        Head("coral")


def test_warmup_then_cosine_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=20, warmup_steps=4)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == sorted(lrs[:5]) and lrs[0] < 0.5 and lrs[4] == pytest.approx(1.0)
    assert lrs[4:] == sorted(lrs[4:], reverse=True) and lrs[-1] < 0.05


def test_balanced_sampling_draws_rare_classes_as_often_as_common_ones():
    labels = [0] * 800 + [1] * 150 + [2] * 50
    s = EpochSampler(labels, batch_size=10, seed=0, balanced=True)
    s.set_epoch(1)
    drawn = Counter(labels[i] for i, _ in s)
    assert sum(drawn.values()) == 1000
    assert all(280 < drawn[c] < 390 for c in (0, 1, 2)), drawn


def test_ranks_share_an_epoch_without_overlap_and_resume_skips_exactly_the_done_batches():
    labels = list(range(5)) * 21  # 105 items: padded to 106 for two ranks
    shards = []
    for rank in (0, 1):
        s = EpochSampler(labels, batch_size=4, seed=3, rank=rank, world=2)
        s.set_epoch(2)
        shards.append([i for i, _ in s])
    assert len(shards[0]) == len(shards[1]) == 53
    assert set(shards[0]) | set(shards[1]) == set(range(105))
    assert len(set(shards[0]) & set(shards[1])) == 1  # the one padding repeat
    full = EpochSampler(labels, batch_size=4, seed=3)
    full.set_epoch(2)
    whole = list(full)
    full.set_epoch(2, start_batch=5)
    assert list(full) == whole[20:] and len(full) == 85
    full.set_epoch(3)
    assert [i for i, _ in full] != [i for i, _ in whole]  # a new order each epoch


@pytest.mark.parametrize("kind", ["softmax", "ordinal"])
def test_outside_counts_train_two_more_classes_and_serve_the_range_renormalised(kind):
    head = Head(kind, count_range=CountRange(1, 5), outside=True)
    assert head.outputs == 7 and [head.index(c) for c in (0, 1, 3, 5, 6, 40)] == [0, 1, 3, 5, 6, 6]
    torch.manual_seed(0)
    outputs = torch.randn(8, 7 if kind == "softmax" else 6)
    served = head.probabilities(outputs)
    full = head._probabilities(outputs)
    assert served.shape == (8, 5) and torch.allclose(served.sum(1), torch.ones(8), atol=1e-6)
    assert torch.allclose(served, full[:, 1:6] / full[:, 1:6].sum(1, keepdim=True))
    with pytest.raises(ValueError, match="outside 1..5"):
        Head(kind, count_range=CountRange(1, 5)).index(6)


@pytest.mark.slow
def test_an_ordinal_head_on_photos_outside_the_range_trains_extra_classes_and_serves_the_range(tmp_path):
    """One run for two recipe switches that combine (the head's arithmetic for both kinds
    is tested above without a run): head=ordinal and outside-counts=classes."""
    import onnxruntime as ort

    bins = generate(tmp_path / "bins", n=140, seed=0, size=32, min_count=1, max_count=7)  # 20 of each
    base = make_opt_ml(tmp_path / "opt_ml", {"training": bins},
                       {**TINY, "epochs": "1", "head": "ordinal", "outside-counts": "classes"})
    proc = run_toolkit_train(base)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "train includes 40 photos with counts outside the range" in proc.stdout
    split = read_manifest(base / "output" / "data" / "split.json")
    counts = {json.loads((bins / "metadata" / f"{i}.json").read_text())["EXPECTED_QUANTITY"]: name
              for name, ids in split.items() for i in ids if name != "train"}
    assert set(counts) <= {1, 2, 3, 4, 5}  # validation and test hold only the served counts
    card = ModelCard.read(base / "model")
    assert card.classes == [1, 2, 3, 4, 5]
    assert card.training["head"] == "ordinal" and card.training["onnx_parity_max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(base / "model" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    p = session.run(["probabilities"], {"input": x})[0]
    assert p.shape == (3, 5) and np.all(p >= 0) and np.allclose(p.sum(1), 1, atol=1e-5)
