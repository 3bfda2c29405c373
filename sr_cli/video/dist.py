"""Several processes on one video under ``torchrun``: the rank's frame range and a barrier between ranks."""

from __future__ import annotations

from datetime import timedelta

from sr_cli.errors import SrtoolError
from sr_cli.train.distributed import (
    join_process_group,
    leave_process_group,
    rank_and_world,
)

# A rank may wait for the others for as long as a long video takes to upscale.
BARRIER_TIMEOUT = timedelta(days=7)


def rank_range(frames: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous frames ``[a, b)`` of one rank: an even split, earlier ranks never longer."""
    return frames * rank // world, frames * (rank + 1) // world


class Group:
    """The ranks of one job, synchronised by a gloo barrier (a no-op for a single process)."""

    def __init__(self) -> None:
        self.rank, self.world = rank_and_world()
        self._dist = None
        if self.world > 1:
            import torch.distributed as dist

            try:
                join_process_group("gloo", BARRIER_TIMEOUT)
            except (RuntimeError, ValueError) as err:
                raise SrtoolError(f"rank {self.rank} cannot join the other {self.world - 1} rank(s): "
                                  f"{str(err).splitlines()[0]} (start it with torchrun)") from None
            self._dist = dist

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        if self._dist is not None:
            self._dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self._dist is not None:
            leave_process_group()
