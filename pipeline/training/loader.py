"""Loaders built once per run: persistent workers serve every epoch and every validation.

The training loader's :class:`EpochSampler` is told each epoch's order (and, after a resume, the
batch to start from) and yields ``(epoch, row)`` items, so the workers need no message to follow the
epoch. Batches hold ``uint8`` pixels; the step normalises them on the device.

Workers are forked and run one thread each (torch sets it, which also bounds OpenCV's OpenMP
pool; calling ``cv2.setNumThreads`` in a forked worker deadlocks once the parent has used OpenCV).
"""

from __future__ import annotations

import torch

from pipeline.model import ShardCrops, make_loader


class EpochSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, row)`` for the rows of ``order[start:stop]``, set by :meth:`set`."""

    def __init__(self):
        self.epoch, self.rows = 0, []

    def set(self, epoch: int, order: list[int], start: int, stop: int) -> None:
        self.epoch, self.rows = epoch, order[start:stop]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.rows])

    def __len__(self) -> int:
        return len(self.rows)


def train_loader(dataset: ShardCrops, batch_size: int, workers: int):
    """``(loader, sampler)``: full batches only; call ``sampler.set`` before iterating each epoch."""
    sampler = EpochSampler()
    return make_loader(dataset, batch_size, workers, drop_last=True, order=sampler, persistent=True), sampler


def eval_loader(dataset: ShardCrops, batch_size: int, workers: int):
    """Every crop of ``dataset`` in table order, no augmentation (``dataset.augmenter`` is None)."""
    return make_loader(dataset, batch_size, workers, drop_last=False, order=range(len(dataset)), persistent=True)
