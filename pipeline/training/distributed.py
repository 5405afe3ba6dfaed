"""Several GPUs (``torchrun``, one process per device): each rank reads its slice of every global
batch, the features of the whole batch are gathered (with autograd) so the batch-wide losses and
slerp see exactly what one process would, and the trainable gradients are averaged. Rank 0 writes
the state, the log and the adapter. On CPUs the same code runs with the gloo backend (tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device | None) -> tuple[World, torch.device | None]:
    """Join the process group when started by torchrun with more than one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size < 2:
        return World(), device
    cuda = torch.cuda.is_available() and (device is None or device.type == "cuda")
    if cuda:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size()), device or torch.device("cpu")


def teardown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def rank_rows(rows: list, batch_size: int, world: World) -> list:
    """This rank's share of each global batch in ``rows`` (consecutive slices, rank order)."""
    if world.size == 1:
        return rows
    local = batch_size // world.size
    return [r for b in range(0, len(rows), batch_size) for r in rows[b + world.rank * local: b + (world.rank + 1) * local]]


def gather_features(features: torch.Tensor, world: World) -> torch.Tensor:
    """The whole batch's features in rank order; gradients flow back to each rank's own rows."""
    if world.size == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features))


def average_gradients(params, world: World) -> None:
    """Mean of the ranks' gradients. With gathered features every rank back-propagates the same
    batch loss, so each rank's own-rows gradient arrives ``size`` times (the gather's backward sums
    it); the mean over ranks then equals the one-process gradient."""
    if world.size == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world.size)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()
