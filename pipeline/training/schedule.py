"""The learning-rate schedule of LNCLIP-DF: warm-up then cosine, in repeating cycles."""

from __future__ import annotations

import math


def lr_at(
    step: int, steps_per_epoch: int, lr: float, min_lr: float, warmup_epochs: float, cycle_epochs: float
) -> float:
    """Learning rate before optimiser step ``step`` (0-based, global).

    Cycles of ``cycle_epochs`` epochs repeat; within a cycle: linear warm-up from ``min_lr`` to ``lr``
    over ``warmup_epochs`` epochs, then cosine decay from ``lr`` to ``min_lr`` over the rest of the
    cycle (the paper: 1 + 9 epochs, two cycles). ``warmup_epochs = 0`` starts each cycle at ``lr``.
    """
    cycle = round(cycle_epochs * steps_per_epoch)
    warm = round(warmup_epochs * steps_per_epoch)
    if cycle <= warm or cycle < 1:
        raise ValueError(f"cycle_epochs ({cycle_epochs}) must be longer than warmup_epochs ({warmup_epochs})")
    pos = step % cycle
    if pos < warm:
        return min_lr + (lr - min_lr) * pos / warm
    progress = (pos - warm) / (cycle - warm)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
