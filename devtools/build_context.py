"""A Docker build context per image, holding only what that image installs.

``make wheels`` fills ``wheels/`` once for every lock (``wheels/labelstudio/`` for Label
Studio's); each image's context under ``build/context/<image>/`` then holds hard links to
exactly its own files: its Dockerfile, its lock, that lock's wheels, our wheel where the
image installs it, and its code. The paths inside a context are the repository's own
(``requirements/serving.lock``, ``wheels/*.whl``, ``training-image/code/``), so a
Dockerfile reads the same in either. The serving image's build never sees torch or the
CUDA wheels (3 GB the classic builder would otherwise send, and hash, on every build).

Why hard links and not BuildKit's named contexts: the engine here is Debian's docker.io
20.10, whose CLI needs the buildx plugin for BuildKit (not to be had offline), and named
contexts need the Dockerfile frontend 1.4, which a build pulls from a registry. Links work
with the classic builder, compose's fallback to it, and BuildKit alike, and cost no disk.

    python3 -m devtools.build_context [IMAGE ...]     # stdlib only: make wheels runs it

Makes the contexts anew on every call (linking is cheap), so they never lag the tree.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "context"


class BuildContextError(RuntimeError):
    """A context that cannot be made: the wheels the lock names are not in the wheelhouse."""


@dataclass(frozen=True)
class Image:
    dockerfile: str
    lock: str
    wheels: str               # the wheelhouse folder this lock's wheels are in
    project: bool = True      # our own wheel (wheels/project/bincounter-*.whl)
    code: tuple[str, ...] = ()


IMAGES = {
    "training": Image("training-image/Dockerfile", "requirements/training.lock", "wheels",
                      code=("training-image/code",)),
    "serving": Image("serving-image/Dockerfile", "requirements/serving.lock", "wheels"),
    "labelstudio": Image("labelstudio-image/Dockerfile", "requirements/labelstudio.lock", "wheels/labelstudio",
                         project=False),
}


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a lock's ``name==version`` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def wheels_by_pin(folder: Path) -> dict[str, Path]:
    """{"name==version": wheel file} of a wheelhouse folder (its top level only)."""
    found = {}
    for path in folder.glob("*.whl"):
        name, version = path.name.split("-")[:2]
        found[f"{canonical(name)}=={version}"] = path
    return found


def files(image: str, root: Path = ROOT) -> dict[str, Path]:
    """{path inside the context: file in the tree} for ``image``; fails naming what is missing."""
    spec = IMAGES[image]
    have = wheels_by_pin(root / spec.wheels)
    wanted = [f"{n}=={v}" for n, v in read_lock(root / spec.lock).items()]
    missing = [pin for pin in wanted if pin not in have]
    out = {spec.dockerfile: root / spec.dockerfile, spec.lock: root / spec.lock}
    out.update({f"{spec.wheels}/{have[pin].name}": have[pin] for pin in wanted if pin in have})
    if spec.project:
        ours = sorted((root / "wheels" / "project").glob("bincounter-*.whl"))
        if not ours:
            missing.append("bincounter (our wheel, wheels/project/)")
        out.update({f"wheels/project/{p.name}": p for p in ours})
    if missing:
        raise BuildContextError(f"the {image} image's context lacks {len(missing)} wheels of {spec.lock} "
                                f"(e.g. {', '.join(missing[:3])}): run `make wheels`")
    for folder in spec.code:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out[str(path.relative_to(root))] = path
    return out


def link(wanted: dict[str, Path], where: Path) -> Path:
    """``where`` made anew holding ``wanted`` ({path inside: file in the tree}) as hard links."""
    shutil.rmtree(where, ignore_errors=True)
    for rel, src in wanted.items():
        dst = where / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system (or one without hard links): a copy does the same
            shutil.copy2(src, dst)
    return where


def make(image: str, root: Path = ROOT, out: Path = OUT) -> Path:
    """``out/<image>/``, made anew from the tree; its path."""
    return link(files(image, root), out / image)


def size(folder: Path) -> int:
    """Bytes a build of this context sends to the engine (its files' sizes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="*", metavar="IMAGE", help=f"which contexts (default: all of {', '.join(IMAGES)})")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    unknown = sorted(set(args.images) - set(IMAGES))
    if unknown:
        p.error(f"no image {unknown[0]!r}: one of {', '.join(IMAGES)}")
    try:
        for image in args.images or list(IMAGES):
            where = make(image, ROOT, args.out)
            print(f"build context {where.relative_to(ROOT) if where.is_relative_to(ROOT) else where}: "
                  f"{sum(1 for f in where.rglob('*') if f.is_file())} files, {size(where) / 1e6:.0f} MB")
    except BuildContextError as exc:
        print(f"build_context: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
