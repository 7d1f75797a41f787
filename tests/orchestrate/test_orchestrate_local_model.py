"""The model folder SDK local mode is given (it unpacks every tarball beside the model into
that folder and mounts all of it): the serving files only, whatever the user pointed at."""

from __future__ import annotations

import tarfile

import pytest

from orchestrate.core.config import ConfigError
from orchestrate.local.sdk import model_dir


def test_a_model_folder_is_copied_without_tarballs_or_torch_weights(tmp_path):
    src = tmp_path / "trained"
    src.mkdir()
    for name in ("model.json", "model.onnx", "model.int8.onnx", "model.pth", "model.tar.gz"):
        (src / name).write_bytes(name.encode())
    target = model_dir(src, tmp_path / "root")
    assert sorted(p.name for p in target.iterdir()) == ["model.int8.onnx", "model.json", "model.onnx"]
    assert sorted(p.name for p in src.iterdir()) == ["model.int8.onnx", "model.json", "model.onnx",
                                                       "model.pth", "model.tar.gz"]  # the user's folder untouched


def test_a_model_tarball_is_unpacked_into_a_folder_of_its_own(tmp_path):
    (tmp_path / "model.json").write_text("{}")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.json", arcname="model.json")
    target = model_dir(tmp_path / "model.tar.gz", tmp_path / "root")
    assert [p.name for p in target.iterdir()] == ["model.json"] and target.parent == tmp_path / "root"


def test_anything_else_is_refused_with_the_path(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a tarball")
    with pytest.raises(ConfigError, match="neither a model folder nor a model.tar.gz"):
        model_dir(tmp_path / "model.onnx", tmp_path / "root")
