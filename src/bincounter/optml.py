"""Build a SageMaker-shaped ``/opt/ml`` tree from local folders.

``python -m bincounter.optml BASE --channel training=DIR --hp epochs=2`` writes
``input/config/{hyperparameters,resourceconfig,inputdataconfig}.json`` exactly
as SageMaker does (hyperparameter values as strings) and links each channel
under ``input/data/<name>``: what the demo and docker compose hand to the
toolkit's ``train``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def build_tree(base: str | Path, channels: dict[str, str | Path], hyperparameters: dict,
               hosts: tuple[str, ...] = ("algo-1",), current_host: str = "algo-1",
               copy: bool = False) -> Path:
    base = Path(base)
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for d in ("model", "output/data", "checkpoints", "code"):
        (base / d).mkdir(parents=True, exist_ok=True)
    hps = {k: v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}
    (config / "hyperparameters.json").write_text(json.dumps(hps, indent=2))
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": current_host, "hosts": sorted(hosts), "network_interface_name": "eth0",
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": "local", "hosts": sorted(hosts)}]}, indent=2))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None"} for name in channels}, indent=2))
    for name, src in channels.items():
        dst = base / "input" / "data" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        elif dst.exists():
            shutil.rmtree(dst)
        if copy:
            shutil.copytree(Path(src), dst)
        else:
            dst.symlink_to(Path(src).resolve(), target_is_directory=True)
    return base


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bincounter.optml", description=__doc__.split("\n")[0])
    p.add_argument("base")
    p.add_argument("--channel", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--hosts", default="algo-1", help="comma-separated host names")
    p.add_argument("--current-host", default="algo-1")
    p.add_argument("--copy", action="store_true", help="copy channels instead of linking them")
    a = p.parse_args(argv)
    channels = dict(c.split("=", 1) for c in a.channel)
    hps = dict(h.split("=", 1) for h in a.hp)
    build_tree(a.base, channels, hps, tuple(a.hosts.split(",")), a.current_host, a.copy)


if __name__ == "__main__":
    main()
