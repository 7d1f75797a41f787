"""Each image's build context holds exactly what that image installs (devtools.build_context):
made here from a wheelhouse of empty stand-in wheels named after the real locks' pins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools import build_context
from devtools.build_context import IMAGES, BuildContextError, read_lock

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the repo's Dockerfiles, locks and training code, beside a wheelhouse holding one
    (empty) wheel per pin of every lock, in the folders ``make wheels`` fills, and our wheel."""
    root = tmp_path / "repo"
    for spec in IMAGES.values():
        for rel in (spec.dockerfile, spec.lock, *spec.code):
            src, dst = ROOT / rel, root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        (root / spec.wheels).mkdir(parents=True, exist_ok=True)
        for name, version in read_lock(root / spec.lock).items():
            (root / spec.wheels / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"w")
    (root / "wheels" / "project").mkdir()
    (root / "wheels" / "project" / "bincounter-0.1.0-py3-none-any.whl").write_bytes(b"ours")
    return root


def _wheels(context: Path) -> set[str]:
    return {p.name for p in context.rglob("*.whl")}


def test_the_serving_context_holds_its_locks_wheels_and_ours_and_never_torch_or_cuda(tree, tmp_path):
    context = build_context.make("serving", tree, tmp_path / "out")
    wheels = _wheels(context)
    assert len(wheels) == len(read_lock(tree / "requirements/serving.lock")) + 1
    assert "bincounter-0.1.0-py3-none-any.whl" in wheels
    # the training lock has torch and the CUDA wheels; none of them may reach this build
    assert not [w for w in wheels if w.startswith(("torch", "nvidia", "cuda", "triton"))]
    assert (context / "serving-image/Dockerfile").is_file() and (context / "requirements/serving.lock").is_file()
    assert not (context / "requirements/training.lock").exists() and not (context / "training-image").exists()


def test_the_training_context_holds_torch_its_code_and_links_not_copies(tree, tmp_path):
    context = build_context.make("training", tree, tmp_path / "out")
    wheels = _wheels(context)
    assert any(w.startswith("torch-") for w in wheels) and not any("label_studio" in w for w in wheels)
    assert len(wheels) == len(read_lock(tree / "requirements/training.lock")) + 1
    assert (context / "training-image/code/train.py").is_file()
    src = tree / "requirements/training.lock"
    assert (context / "requirements/training.lock").stat().st_ino == src.stat().st_ino  # a hard link


def test_the_label_studio_context_holds_only_label_studios_wheels(tree, tmp_path):
    context = build_context.make("labelstudio", tree, tmp_path / "out")
    assert len(_wheels(context)) == len(read_lock(tree / "requirements/labelstudio.lock"))
    assert all(p.parent.name == "labelstudio" for p in context.rglob("*.whl"))  # no project wheel, no torch


def test_a_context_is_made_anew_so_a_wheel_gone_from_the_lock_leaves_it(tree, tmp_path):
    out = tmp_path / "out"
    stale = build_context.make("serving", tree, out) / "wheels" / "left-over-1.0-py3-none-any.whl"
    stale.write_bytes(b"x")
    build_context.make("serving", tree, out)
    assert not stale.exists()


def test_a_missing_wheel_is_named_with_the_command_that_makes_it(tree, tmp_path):
    next((tree / "wheels").glob("onnxruntime-*.whl")).unlink()
    with pytest.raises(BuildContextError, match=r"serving image's context lacks 1 wheels .*onnxruntime==.*"
                                                r"run `make wheels`"):
        build_context.make("serving", tree, tmp_path / "out")
    for whl in (tree / "wheels" / "project").glob("*.whl"):
        whl.unlink()
    with pytest.raises(BuildContextError, match=r"bincounter \(our wheel"):
        build_context.files("training", tree)
