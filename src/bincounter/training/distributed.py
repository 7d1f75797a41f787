"""Multi-host data parallelism from the SageMaker contract, and the one-host no-op.

The generic toolkit starts one process per host and no launcher, so the script
joins ``torch.distributed`` itself: master = ``hosts[0]`` (or ``MASTER_ADDR``),
rank = index of the current host, gloo on CPU, nccl on GPU. Every helper here
is the identity on one host, so the single-host path has no distributed set-up.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from bincounter.training.environment import TrainingEnv

log = logging.getLogger(__name__)
RENDEZVOUS_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(env: TrainingEnv, device: torch.device) -> World:
    """Join the process group when there is more than one host."""
    if not env.is_distributed:
        return World()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if env.network_interface:
        # SageMaker names the interface the hosts reach each other on
        os.environ.setdefault("GLOO_SOCKET_IFNAME", env.network_interface)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", env.network_interface)
    url = f"tcp://{env.master_addr}:{env.master_port}"
    log.info("joining %s as rank %d of %d (%s, %s)", url, env.rank, len(env.hosts),
             backend, env.current_host)
    dist.init_process_group(backend, init_method=url, rank=env.rank, world_size=len(env.hosts),
                            timeout=RENDEZVOUS_TIMEOUT)
    return World(rank=env.rank, size=len(env.hosts))


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP averages the gradients across hosts in ``backward``."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def all_sum(values: list[float], world: World) -> list[float]:
    if not world.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_min(value: int, world: World) -> int:
    if not world.active:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def gather(obj, world: World) -> list:
    """Every rank's ``obj``, in rank order (small objects: eval outputs)."""
    if not world.active:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj, world: World):
    """Rank 0's ``obj`` on every rank."""
    if not world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()
