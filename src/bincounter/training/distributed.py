"""Data parallelism from the SageMaker contract, and the one-process no-op.

The generic toolkit starts one process per host and no launcher, so the script
joins ``torch.distributed`` itself: master = ``hosts[0]`` (or ``MASTER_ADDR``),
``processes_per_host`` processes on each host (``bincounter.training.workers``
starts them when there is more than one), global rank = host index *
processes per host + local rank, gloo on CPU, nccl on GPU. Every helper here is
the identity in a world of one process, which has no distributed set-up.
"""

from __future__ import annotations

import hashlib
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
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, cuda: bool) -> torch.device:
        """``cuda:<local rank>`` (one GPU per process), else the CPU."""
        return torch.device("cuda", self.local_rank) if cuda else torch.device("cpu")


def plan(host_index: int, hosts: int, per_host: int, local_rank: int) -> World:
    """This process's place among ``hosts * per_host`` processes, host by host."""
    if not (0 <= host_index < hosts and 0 <= local_rank < per_host):
        raise ValueError(f"no place for local rank {local_rank} on host {host_index} "
                         f"({hosts} hosts x {per_host} processes)")
    return World(rank=host_index * per_host + local_rank, size=hosts * per_host, local_rank=local_rank)


def init(env: TrainingEnv, world: World, device: torch.device) -> None:
    """Join the process group when the world has more than one process."""
    if not world.active:
        return
    if device.type == "cuda":
        # untested here (no GPU): nccl needs the process's own GPU current before
        # it joins, and cannot carry CPU tensors (metric sums, object
        # collectives), which go over gloo
        torch.cuda.set_device(device)
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    if env.network_interface:
        # SageMaker names the interface the hosts reach each other on
        os.environ.setdefault("GLOO_SOCKET_IFNAME", env.network_interface)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", env.network_interface)
    url = f"tcp://{env.master_addr}:{env.master_port}"
    log.info("joining %s as rank %d of %d (%s, %s, local rank %d)", url, world.rank, world.size,
             backend, env.current_host, world.local_rank)
    dist.init_process_group(backend, init_method=url, rank=world.rank, world_size=world.size,
                            timeout=RENDEZVOUS_TIMEOUT)


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


def weights_digest(model: torch.nn.Module) -> str:
    """A fingerprint of the parameters: equal on every rank when DDP averaged the gradients."""
    h = hashlib.sha256()
    for name, p in sorted(unwrap(model).named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
