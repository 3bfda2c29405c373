"""Several processes under ``torchrun``, in one place: this process's rank, the world size and its local rank (from
torchrun's environment), joining and leaving the process group, values agreed over ranks, and DistributedDataParallel.

``srtool train``/``distill`` and ``srtool video`` use it; torch is imported only where needed (video reads its
ranks before torch loads).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


def rank_and_world() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) from the environment torchrun sets; (0, 1) for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """LOCAL_RANK from torchrun (the GPU index on this machine), 0 otherwise."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def in_group() -> bool:
    """Whether this process has joined a process group (a torchrun world of several processes)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def join_process_group(backend: str, timeout: timedelta | None = None) -> None:
    """Join the process group of torchrun's ranks (``backend``: nccl or gloo), unless this process is in it."""
    import torch.distributed as dist

    if not dist.is_initialized():
        rank, world = rank_and_world()
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)


def leave_process_group() -> None:
    """End this process's part in a torchrun world, if it joined one (a gloo group left to the interpreter's exit
    can abort the process with ``terminate called without an active exception``)."""
    if in_group():
        import torch.distributed as dist

        dist.destroy_process_group()


def training_device(device: torch.device) -> torch.device:
    """``device`` for a training rank: under torchrun CUDA becomes this rank's own GPU (``cuda:LOCAL_RANK``, made
    current) and the process joins the group (NCCL on CUDA, gloo otherwise); unchanged for a single process."""
    import torch

    if rank_and_world()[1] == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    join_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _summed(values: list[float], device: torch.device) -> list[float]:
    """``values`` summed over every rank (as they are in a single process)."""
    if not in_group():
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def mean_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """The mean of each of ``values`` over every rank (``device``: where NCCL needs the tensor)."""
    world = rank_and_world()[1] if in_group() else 1
    return [v / world for v in _summed(values, device)]


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on some rank (every rank gets the same answer)."""
    return _summed([float(flag)], device)[0] > 0


def wrap(module: nn.Module, device: torch.device, find_unused: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel under torchrun (``find_unused``: some parameters may get no gradient in
    a step), else itself."""
    if not in_group():
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused)
