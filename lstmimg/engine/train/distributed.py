"""Training on several processes with PyTorch's own DistributedDataParallel.

Started by ``torchrun --nproc_per_node N -m lstmimg train ...`` (or ``lstmimg train --devices N``, which
runs exactly that), every process runs ``fit``: each takes its share of every epoch's shuffled order
(the DistributedSampler scheme, same permutation everywhere, ``order[rank::world]``), gradients are
averaged by DDP, training metrics are summed across processes, and only rank 0 prints, draws progress
and writes the run folder. nccl on GPUs, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: torch.device, timeout_s: float | None = None) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes in the environment (a no-op for one process);
    ``timeout_s``: how long a collective (a barrier) waits for the slowest process (default 30 min)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:  # share the cores instead of every process using all of them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        from datetime import timedelta

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s) if timeout_s else None)
    return Dist(rank, world, local_rank), device


def shard(order: torch.Tensor, d: Dist) -> torch.Tensor:
    """This process's share of an epoch's order; every share has the same length."""
    if not d.active:
        return order
    per_rank = len(order) // d.world
    return order[d.rank :: d.world][:per_rank]


def sum_all(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """Element-wise sum over all processes."""
    if not d.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_all(flag: bool, d: Dist, device: torch.device) -> bool:
    """True on every process when it is true on any (e.g. a stop signal that reached one of them)."""
    if not d.active:
        return flag
    return sum_all([float(flag)], d, device)[0] > 0


def broadcast_float(value: float, d: Dist, device: torch.device) -> float:
    """Rank 0's ``value`` on every process (a decision all must share)."""
    if not d.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.item()


def barrier(d: Dist) -> None:
    """Wait until every process is here."""
    if d.active:
        dist.barrier()


def finish(d: Dist) -> None:
    """The normal end of a run: wait for every process, then leave the group together (a process
    that left while another still used the group could abort at exit)."""
    if d.active and dist.is_initialized():
        dist.barrier()
    teardown(d)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
