"""The model factory: a torchvision classifier with a head for the count classes."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from bincounter.training.failures import PretrainedWeightsUnavailable
from bincounter.training.hyperparameters import HyperparameterError

log = logging.getLogger(__name__)


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    if isinstance(getattr(model, "fc", None), nn.Linear):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif isinstance(getattr(model, "classifier", None), nn.Sequential) and isinstance(
            model.classifier[-1], nn.Linear):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    else:
        raise HyperparameterError(f"arch {type(model).__name__}: no linear classifier head to replace")
    return model


def pretrained_weights_path(arch: str) -> Path:
    weights = models.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_model(arch: str, num_classes: int, pretrained: bool) -> nn.Module:
    """``arch`` is any torchvision classification model name (resnet50, resnet18, ...)."""
    if arch not in models.list_models(module=models):
        raise HyperparameterError(f"unknown arch {arch!r}; try resnet50, resnet18, mobilenet_v3_small")
    if not pretrained:
        return models.get_model(arch, weights=None, num_classes=num_classes)
    path = pretrained_weights_path(arch)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"pretrained=true but the ImageNet weights for {arch} are not at {path} "
            f"(TORCH_HOME); build the training image with weights, or set pretrained=false "
            f"to train from scratch")
    model = models.get_model(arch, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    log.info("loaded ImageNet weights for %s from %s", arch, path)
    return _replace_head(model, num_classes)
