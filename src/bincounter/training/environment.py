"""The training contract, resolved once into a frozen ``TrainingEnv``.

Every path and setting a training run uses comes from here: the SageMaker
variables the toolkit exports (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``,
``SM_HOSTS``, ...), else the ``SAGEMAKER_BASE_DIR`` tree (``/opt/ml`` by
default, with its ``input/config/*.json``; ``Layout``), and the
hyperparameters (``bincounter.training.hyperparameters``). Nothing else reads
``os.environ`` or ``/opt/ml``: orchestrate takes the container paths it sends
to SageMaker from ``Layout`` too. Torch-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bincounter.training.hyperparameters import HyperparameterError, Hyperparameters

DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_MASTER_PORT = 29500
# SageMaker keeps the first 1024 characters of output/failure as FailureReason
FAILURE_REASON_CHARS = 1024


@dataclass(frozen=True)
class Layout:
    """Where SageMaker puts and collects each file of a training container."""
    base: Path = Path(DEFAULT_BASE_DIR)

    @property
    def input_config(self) -> Path:
        return self.base / "input" / "config"

    @property
    def input_data(self) -> Path:
        return self.base / "input" / "data"

    @property
    def model(self) -> Path:
        return self.base / "model"

    @property
    def output(self) -> Path:
        return self.base / "output"

    @property
    def checkpoints(self) -> Path:
        return self.base / "checkpoints"

    @property
    def tensors(self) -> Path:
        """smdebug's LocalPath, which SageMaker uploads to the DebugHookConfig's S3 path."""
        return self.output / "tensors"


@dataclass(frozen=True)
class TrainingEnv:
    hp: Hyperparameters
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    channels: Mapping[str, Path]
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int
    num_cpus: int
    debug_hook_config: Path | None
    tensor_dir: Path
    # torch.distributed rendezvous: MASTER_ADDR / MASTER_PORT (torchrun's names) when
    # set, else hosts[0] and DEFAULT_MASTER_PORT; tests point them at loopback
    master_addr: str = ""
    master_port: int = 0
    network_interface: str = ""
    # channel -> S3DistributionType ("FullyReplicated" or "ShardedByS3Key")
    distribution: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # each process drives cuda:<local rank>; more processes than GPUs would
        # fail later on a device that does not exist
        if self.num_gpus and self.processes_per_host > self.num_gpus:
            raise HyperparameterError(f"processes-per-host {self.processes_per_host} is more than "
                                      f"the {self.num_gpus} GPUs of this host")

    @property
    def processes_per_host(self) -> int:
        """The ``processes-per-host`` hyperparameter, else one per GPU, else 1."""
        if self.hp.processes_per_host is not None:
            return self.hp.processes_per_host
        return max(1, self.num_gpus)

    @property
    def cpus_per_process(self) -> int:
        return max(1, self.num_cpus // self.processes_per_host)

    @property
    def host_index(self) -> int:
        return self.hosts.index(self.current_host)

    @classmethod
    def resolve(cls, argv: list[str] | None = None,
                environ: Mapping[str, str] | None = None) -> "TrainingEnv":
        env = os.environ if environ is None else environ
        layout = Layout(Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR)))
        config = Path(env.get("SM_INPUT_CONFIG_DIR", layout.input_config))
        data_dir = Path(env.get("SM_INPUT_DATA_DIR", layout.input_data))
        output_dir = Path(env.get("SM_OUTPUT_DIR", layout.output))
        resources = _read_json(config / "resourceconfig.json")
        hosts = tuple(json.loads(env["SM_HOSTS"])) if "SM_HOSTS" in env else tuple(
            resources.get("hosts", ["algo-1"]))
        hook_config = config / "debughookconfig.json"
        channel_config = _read_json(config / "inputdataconfig.json")
        return cls(
            hp=Hyperparameters.parse(argv),
            model_dir=Path(env.get("SM_MODEL_DIR", layout.model)),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", output_dir / "data")),
            checkpoint_dir=Path(env.get("SM_CHECKPOINT_DIR", layout.checkpoints)),
            channels=_channels(env, data_dir),
            hosts=hosts,
            current_host=env.get("SM_CURRENT_HOST", resources.get("current_host", hosts[0])),
            num_gpus=int(env.get("SM_NUM_GPUS", "0")),
            num_cpus=int(env.get("SM_NUM_CPUS", os.cpu_count() or 1)),
            debug_hook_config=hook_config if hook_config.is_file() else None,
            tensor_dir=output_dir / "tensors",
            master_addr=env.get("MASTER_ADDR", hosts[0]),
            master_port=int(env.get("MASTER_PORT", DEFAULT_MASTER_PORT)),
            network_interface=resources.get("network_interface_name", ""),
            distribution={name: c.get("S3DistributionType", "FullyReplicated")
                          for name, c in channel_config.items()},
        )


def failure_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the failure reason goes, resolvable even when the hyperparameters are not."""
    env = os.environ if environ is None else environ
    layout = Layout(Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR)))
    return Path(env.get("SM_OUTPUT_DIR", layout.output)) / "failure"


def write_failure(reason: str, environ: Mapping[str, str] | None = None) -> Path:
    """``output/failure``, written before the toolkit's own (it writes one only if none exists)."""
    path = failure_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason[:FAILURE_REASON_CHARS], encoding="utf-8")
    return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _channels(env: Mapping[str, str], data_dir: Path) -> dict[str, Path]:
    """Channel name -> folder: SM_CHANNEL_<NAME> first, then input/data/<name>/."""
    found = {k[len("SM_CHANNEL_"):].lower(): Path(v) for k, v in env.items()
             if k.startswith("SM_CHANNEL_")}
    if data_dir.is_dir():
        for d in data_dir.iterdir():
            if d.is_dir() and not d.name.endswith("-manifest"):
                found.setdefault(d.name, d)
    return found
