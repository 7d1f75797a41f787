"""The training contract, resolved once into a frozen ``TrainingEnv``.

Every path and setting a training run uses comes from here: the SageMaker
variables the toolkit exports (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``,
``SM_HOSTS``, ...), else the ``SAGEMAKER_BASE_DIR`` tree (``/opt/ml`` by
default, with its ``input/config/*.json``), and the hyperparameters, which the
toolkit passes as CLI flags (strings, typed here by argparse). Nothing else in
the training code reads ``os.environ`` or ``/opt/ml``. Torch-free.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_MASTER_PORT = 29500


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or has a value of the wrong type."""


def str2bool(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "y", "on"):
        return True
    if v in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


class _Parser(argparse.ArgumentParser):
    # argparse would print and exit(2); we need the reason for output/failure
    def error(self, message: str):
        raise HyperparameterError(message)


def get_args_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="train.py", description="Fine-tune a bin item counter.")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--arch", default="resnet50", help="torchvision classifier (resnet18 for small runs)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--pretrained", type=str2bool, default=True,
                   help="start from ImageNet weights (must be in TORCH_HOME; never downloaded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers (default: CPUs - 1, at most 8)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--max-count", type=int, default=5)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="carved from training when there is no validation channel")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="carved from training when there is no test channel")
    p.add_argument("--debug-hook", type=str2bool, default=None,
                   help="smdebug hook (default: on when SageMaker passed a DebugHookConfig)")
    p.add_argument("--log-interval", type=int, default=20, help="steps between progress lines")
    p.add_argument("--resume", default="", help="checkpoint file to resume from")
    # scale: spot resume, profiling, rules
    p.add_argument("--checkpoint-steps", type=int, default=50,
                   help="also checkpoint every N train steps (0: only at epoch ends)")
    p.add_argument("--profile-steps", type=int, default=10,
                   help="torch.profiler on this many train steps of the first epoch (0: off)")
    p.add_argument("--rules", type=str2bool, default=True,
                   help="evaluate the debugger rules on the saved trial after training")
    p.add_argument("--processes-per-host", type=int, default=None,
                   help="training processes on each host (default: one per GPU, 1 on a CPU host)")
    # recipe
    # off by measurement: on the ABID sample it cost 4.3 pp accuracy and 0.54 RMSE (bench-train)
    p.add_argument("--balanced-sampling", type=str2bool, default=False,
                   help="draw training images with class-balanced weights (with replacement)")
    p.add_argument("--augment", type=str2bool, default=True,
                   help="flips, 90-degree turns, small rotations, colour jitter (PIL, before preprocess)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--head", choices=("softmax", "ordinal"), default="softmax",
                   help="softmax: cross-entropy; ordinal: cumulative-logit head (counts are ordered)")
    p.add_argument("--warmup-epochs", type=float, default=0.5,
                   help="linear LR warm-up before the cosine decay")
    p.add_argument("--amp", type=str2bool, default=True, help="mixed precision (GPU only)")
    return p


@dataclass(frozen=True)
class Hyperparameters:
    lr: float
    batch_size: int
    epochs: int
    arch: str
    image_size: int
    pretrained: bool
    seed: int
    num_workers: int | None
    momentum: float
    weight_decay: float
    min_count: int
    max_count: int
    val_fraction: float
    test_fraction: float
    debug_hook: bool | None
    log_interval: int
    resume: str
    checkpoint_steps: int
    profile_steps: int
    rules: bool
    processes_per_host: int | None
    balanced_sampling: bool
    augment: bool
    label_smoothing: float
    head: str
    warmup_epochs: float
    amp: bool

    def __post_init__(self) -> None:
        checks = [(self.lr > 0, "lr must be > 0"), (self.batch_size > 0, "batch-size must be > 0"),
                  (self.epochs > 0, "epochs must be > 0"), (self.image_size >= 32, "image-size must be >= 32"),
                  (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                   and self.val_fraction + self.test_fraction < 1, "fractions must leave data to train on"),
                  (self.checkpoint_steps >= 0, "checkpoint-steps must be >= 0"),
                  (self.processes_per_host is None or self.processes_per_host >= 1,
                   "processes-per-host must be >= 1"),
                  (0 <= self.label_smoothing < 1, "label-smoothing must be in [0, 1)"),
                  (self.warmup_epochs >= 0, "warmup-epochs must be >= 0")]
        for ok, msg in checks:
            if not ok:
                raise HyperparameterError(msg)

    @classmethod
    def parse(cls, argv: list[str] | None) -> "Hyperparameters":
        ns, unknown = get_args_parser().parse_known_args(argv)
        if unknown:
            raise HyperparameterError(f"unknown hyperparameters: {' '.join(unknown)}")
        return cls(**vars(ns))

    def to_dict(self) -> dict:
        return {k.replace("_", "-"): v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TrainingEnv:
    hp: Hyperparameters
    base_dir: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    channels: Mapping[str, Path]
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int
    num_cpus: int
    debug_hook_config: Path | None
    tensor_dir: Path
    interactive: bool = field(default=False)
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
                environ: Mapping[str, str] | None = None, interactive: bool = False) -> "TrainingEnv":
        env = os.environ if environ is None else environ
        base = Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))
        config = Path(env.get("SM_INPUT_CONFIG_DIR", base / "input" / "config"))
        data_dir = Path(env.get("SM_INPUT_DATA_DIR", base / "input" / "data"))
        output_dir = Path(env.get("SM_OUTPUT_DIR", base / "output"))
        resources = _read_json(config / "resourceconfig.json")
        hosts = tuple(json.loads(env["SM_HOSTS"])) if "SM_HOSTS" in env else tuple(
            resources.get("hosts", ["algo-1"]))
        hook_config = config / "debughookconfig.json"
        channel_config = _read_json(config / "inputdataconfig.json")
        return cls(
            hp=Hyperparameters.parse(argv),
            base_dir=base,
            model_dir=Path(env.get("SM_MODEL_DIR", base / "model")),
            output_dir=output_dir,
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", output_dir / "data")),
            checkpoint_dir=Path(env.get("SM_CHECKPOINT_DIR", base / "checkpoints")),
            channels=_channels(env, data_dir),
            hosts=hosts,
            current_host=env.get("SM_CURRENT_HOST", resources.get("current_host", hosts[0])),
            num_gpus=int(env.get("SM_NUM_GPUS", "0")),
            num_cpus=int(env.get("SM_NUM_CPUS", os.cpu_count() or 1)),
            debug_hook_config=hook_config if hook_config.is_file() else None,
            tensor_dir=output_dir / "tensors",
            interactive=interactive,
            master_addr=env.get("MASTER_ADDR", hosts[0]),
            master_port=int(env.get("MASTER_PORT", DEFAULT_MASTER_PORT)),
            network_interface=resources.get("network_interface_name", ""),
            distribution={name: c.get("S3DistributionType", "FullyReplicated")
                          for name, c in channel_config.items()},
        )


def failure_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the failure reason goes, resolvable even when the hyperparameters are not."""
    env = os.environ if environ is None else environ
    base = Path(env.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))
    return Path(env.get("SM_OUTPUT_DIR", base / "output")) / "failure"


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
