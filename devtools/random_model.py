"""A random-weight 5-class model in a serving folder, for the benchmarks that measure the
server or the transform rather than the weights (soak, bench-audit)."""

from __future__ import annotations

from pathlib import Path


def random_model(model_dir: Path, arch: str = "resnet50", size: int = 224) -> Path:
    """``model.onnx`` + ``model.json`` of ``arch`` at ``size`` px with seeded random weights."""
    import torch

    from bincounter.modelcard import ModelCard
    from bincounter.preprocess import PreprocessSpec
    from bincounter.training.export import export_onnx
    from bincounter.training.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, 5, pretrained=False).eval()
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, torch.zeros(2, 3, size, size), model_dir / "model.onnx")
    ModelCard(classes=[1, 2, 3, 4, 5], preprocess=PreprocessSpec(image_size=size), arch=arch).write(model_dir)
    return model_dir


def model_archive(model_dir: Path, names: tuple[str, ...] = ("model.onnx", "model.json")) -> bytes:
    """A model.tar.gz of ``names`` from ``model_dir`` at the archive's top level, as training's
    output (what `--model-data s3://.../model.tar.gz` points at)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            tar.add(model_dir / name, arcname=name)
    return buf.getvalue()
