"""Image builds from the whole wheelhouse (what every build was sent when the repository root
was the build context: every lock's wheels) against each image's own context
(``devtools.build_context``), side by side in one run: bytes sent, seconds cold (``--no-cache``:
every step of ours runs; the base image stays) and warm (the same build again, all cached).

    python -m benchmarks.bench_builds [--images serving labelstudio training] [--json FILE]

Needs a Docker engine and ``make wheels``. Builds with the classic builder and no network, as
``make images`` and the container tests do, under tags of its own (``bincounter-bench-*``),
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devtools import build_context
from devtools.build_context import IMAGES, ROOT

WORK = ROOT / "build" / "bench-builds"


def whole_wheelhouse(image: str) -> Path:
    """The old context of ``image``: its own files plus every wheel of every lock."""
    every_wheel = {str(p.relative_to(ROOT)): p for p in (ROOT / "wheels").rglob("*.whl")}
    return build_context.link({**build_context.files(image), **every_wheel}, WORK / "whole" / image)


def docker(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "0"})


def build(image: str, context: Path, tag: str, cold: bool) -> float:
    start = time.monotonic()
    done = docker("build", "--network", "none", "--build-arg", "PRETRAINED_WEIGHTS=0", "-t", tag,
                  *(["--no-cache"] if cold else []), "-f", str(context / IMAGES[image].dockerfile), str(context))
    if done.returncode:
        raise SystemExit(f"docker build {tag} failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - start


def dangling() -> set[str]:
    return set(docker("images", "--filter", "dangling=true", "--quiet", "--no-trunc").stdout.split())


def forget(tag: str, kept: set[str]) -> None:
    """The bench's image and the layers its builds left behind (their build stages'), not the
    engine's other untagged layers: those are the real images' build cache."""
    docker("rmi", "--force", tag)
    left = sorted(dangling() - kept)
    if left:
        docker("rmi", "--force", *left)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", nargs="+", default=["serving", "labelstudio", "training"], choices=list(IMAGES))
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows, kept = [], dangling()
    for image in args.images:
        for kind, context in (("whole wheelhouse (before)", whole_wheelhouse(image)),
                              ("own context (after)", build_context.make(image))):
            tag = f"bincounter-bench-{image}:{'whole' if 'whole' in kind else 'own'}"
            cold = build(image, context, tag, cold=True)
            warm = build(image, context, tag, cold=False)
            rows.append({"image": image, "context": kind, "bytes": build_context.size(context),
                         "cold_s": round(cold, 1), "warm_s": round(warm, 1)})
            print(f"{image:12} {kind:26} {rows[-1]['bytes'] / 1e6:8.0f} MB  cold {cold:6.1f} s  warm {warm:5.1f} s",
                  flush=True)
            forget(tag, kept)
    print("\nimage         sent (after/before)   cold (after/before)   warm (after/before)")
    for image in args.images:
        before, after = [r for r in rows if r["image"] == image]
        print(f"{image:12}  {after['bytes'] / before['bytes']:8.3f}             {after['cold_s'] / before['cold_s']:6.2f}"
              f"                {after['warm_s'] / before['warm_s']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1))
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
