"""The training recipe: augmentation, output heads with their losses, LR schedule.

Augmentation works on the PIL image before the shared ``preprocess``, so the
server's preprocessing stays the training one. Each head turns the network's
raw output into class probabilities; that same function is exported into the
ONNX graph, so every head serves ``probabilities`` over the count classes.
"""

from __future__ import annotations

import math
import random

import torch
from PIL import Image, ImageEnhance
from torch import nn
from torch.nn import functional as F

from bincounter.labels import DEFAULT_RANGE, CountRange
from bincounter.training.hyperparameters import HEADS, HyperparameterError

def augment_bin(image: Image.Image, rng: random.Random) -> Image.Image:
    """Label-preserving changes for a top-down bin photo.

    Bins are shot from above, so mirror images and quarter turns are equally
    plausible photos; small rotations and colour jitter cover the camera and
    lighting. The output keeps the input's size.
    """
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if image.width == image.height and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.ROTATE_90)
    angle = rng.uniform(-10.0, 10.0)
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128))
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(rng.uniform(0.8, 1.2))
    return image


class CumulativeLogitHead(nn.Module):
    """Ordinal head (proportional odds): one score s(x) and ordered cut points
    t_1 < ... < t_{K-1}; P(y <= k) = sigmoid(t_k - s). Outputs the K-1 cumulative
    logits; class probabilities are their successive differences, never negative."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.score = nn.Linear(in_features, 1)
        self.first_cut = nn.Parameter(torch.tensor(-float(num_classes - 2) / 2))
        # softplus keeps the gaps positive, so the cut points stay ordered
        self.raw_gaps = nn.Parameter(torch.zeros(num_classes - 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        gaps = F.softplus(self.raw_gaps) + 1e-3
        cuts = torch.cat([self.first_cut.reshape(1), self.first_cut + torch.cumsum(gaps, 0)])
        return cuts.unsqueeze(0) - self.score(features)


def ordinal_probabilities(cum_logits: torch.Tensor) -> torch.Tensor:
    cdf = torch.sigmoid(cum_logits)
    ones = torch.ones_like(cdf[:, :1])
    zeros = torch.zeros_like(cdf[:, :1])
    return torch.cat([cdf, ones], 1) - torch.cat([zeros, cdf], 1)


def softmax_probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


class Head:
    """What the loop needs from a head: its label space, its loss and its probabilities.

    The served classes are ``count_range``'s counts. With ``outside`` the network also
    learns two more classes from photos whose counts fall outside them, one below and
    one above (just above without a count below the range); its served probabilities
    are then those of the counts in range, renormalised, so a server sees the same
    classes either way."""

    def __init__(self, kind: str, label_smoothing: float = 0.0, count_range: CountRange = DEFAULT_RANGE,
                 outside: bool = False):
        if kind not in HEADS:
            raise ValueError(f"unknown head {kind!r}; choose one of {HEADS}")
        self.kind = kind
        self.label_smoothing = label_smoothing
        self.count_range = count_range
        below = outside and count_range.min_count > 0
        self.outputs = count_range.num_classes + int(below) + int(outside)  # classes the network learns
        self.served = slice(int(below), int(below) + count_range.num_classes)
        self._probabilities = softmax_probabilities if kind == "softmax" else ordinal_probabilities
        self.criterion: nn.Module = (nn.CrossEntropyLoss(label_smoothing=label_smoothing)
                                     if kind == "softmax" else OrdinalNLLLoss(label_smoothing))

    def index(self, count: int) -> int:
        """The class a photo of ``count`` items trains: its count's, or below / above the range."""
        if self.count_range.contains(count):
            return self.count_range.to_index(count) + self.served.start
        if self.outputs == self.count_range.num_classes:
            raise ValueError(f"count {count} outside {self.count_range.min_count}..{self.count_range.max_count}")
        return 0 if count < self.count_range.min_count else self.outputs - 1

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The most probable class of every class the network learns (the training labels' space)."""
        return self._probabilities(outputs).argmax(1)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """The served classes' probabilities (renormalised when the network learns more)."""
        p = self._probabilities(outputs)
        if p.shape[1] == self.count_range.num_classes:
            return p
        p = p[:, self.served]
        return p / p.sum(1, keepdim=True)

    def replace(self, model: nn.Module) -> nn.Module:
        """Swap a torchvision classifier's linear head for the ordinal one."""
        if self.kind == "softmax":
            return model
        if not isinstance(getattr(model, "fc", None), nn.Linear):
            raise HyperparameterError(f"head=ordinal needs a model with an .fc layer, not {type(model).__name__}")
        model.fc = CumulativeLogitHead(model.fc.in_features, self.outputs)
        return model


class OrdinalNLLLoss(nn.Module):
    """Negative log-likelihood of the cumulative-logit class probabilities,
    with the same label smoothing as cross-entropy."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, cum_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = torch.log(ordinal_probabilities(cum_logits).clamp_min(1e-7))
        return F.nll_loss(logp, target) * (1 - self.label_smoothing) - \
            logp.mean(1).mean() * self.label_smoothing


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int,
                  warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the base LR, then cosine decay to zero, stepped per batch."""
    total_steps, warmup_steps = max(1, total_steps), max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
