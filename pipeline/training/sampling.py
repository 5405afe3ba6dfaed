"""The order in which one training epoch visits the crops: one strategy per config value.

* ``shuffle`` (default): a permutation of every crop seeded by (seed, epoch).
* ``balanced``: class-balanced batches - each batch holds ``batch_size // 2`` crops of each class
  (the extra one of an odd batch alternates), drawn from per-class permutations; the minority class
  is cycled, and batches are made until every crop of both classes has been drawn.
* ``paired``: in-batch pairing - every fake crop sits in the same batch as a crop of its source real
  video (``pairs.parquet``), when that real has crops; fakes without one and reals without a fake go
  alone. Pairs never straddle a batch boundary.

:func:`video_fraction` keeps a seeded share of the training videos (``training.data.fraction``),
each real video together with the fakes made from it.

Every strategy returns row numbers of the FRAMES table and is deterministic in (seed, epoch).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import polars as pl

from pipeline.model import derive_seed, epoch_order

STRATEGIES = ("shuffle", "balanced", "paired")


def _rng(seed: int, epoch: int, what: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, epoch, what))


def balanced_order(labels, seed: int, epoch: int, batch_size: int) -> list[int]:
    """Batches with the two classes in equal proportion (see the module docstring)."""
    labels = np.asarray(labels)
    rng = _rng(seed, epoch, "balanced")
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in (0, 1)]
    if any(len(p) == 0 for p in pools):
        raise ValueError("balanced sampling needs crops of both classes in the training split")
    taken = [0, 0]
    order: list[int] = []
    b = 0
    while taken[0] < len(pools[0]) or taken[1] < len(pools[1]):
        counts = [batch_size // 2, batch_size // 2]
        counts[b % 2] += batch_size % 2
        batch = []
        for c in (0, 1):
            pool = pools[c]
            batch += [int(pool[(taken[c] + k) % len(pool)]) for k in range(counts[c])]
            taken[c] += counts[c]
        order += [batch[i] for i in rng.permutation(len(batch))]
        b += 1
    return order


def _units(frames: pl.DataFrame, pairs: pl.DataFrame, rng: np.random.Generator) -> tuple[list, list[int]]:
    """(fake row, real row) pairs and lone rows: each fake crop with a crop of its source real.

    A real video's crops are cycled over its fakes' crops; a real video with no paired fake goes
    alone, crop by crop, and so does a fake whose source real has no crops."""
    rows = frames.with_row_index("row").select("row", "video_id", "label")
    by_video = {v: rng.permutation(g["row"].to_numpy()) for (v,), g in rows.group_by("video_id", maintain_order=True)}
    source = dict(zip(pairs["fake_id"].to_list(), pairs["real_id"].to_list()))
    used: dict[str, int] = {}
    paired, lone_fakes = [], []
    for row, video, label in rows.filter(pl.col("label") == 1).iter_rows():
        real = source.get(video)
        if real is None or real not in by_video:
            lone_fakes.append(row)
            continue
        k = used.get(real, 0)
        used[real] = k + 1
        paired.append((row, int(by_video[real][k % len(by_video[real])])))
    lone_reals = rows.filter((pl.col("label") == 0) & ~pl.col("video_id").is_in(list(used)))["row"].to_list()
    return paired, lone_fakes + lone_reals


def paired_order(frames: pl.DataFrame, pairs: pl.DataFrame, seed: int, epoch: int, batch_size: int) -> list[int]:
    """Batches where each fake crop has a crop of its source real video beside it (module docstring)."""
    if batch_size < 2:
        raise ValueError("paired sampling needs batch_size >= 2")
    rng = _rng(seed, epoch, "paired")
    paired, singles = _units(frames, pairs, rng)
    units = [list(p) for p in paired] + [[s] for s in singles]
    units = [units[i] for i in rng.permutation(len(units))]
    lone = deque(i for i, u in enumerate(units) if len(u) == 1)
    done = set()
    reals = frames.with_row_index("row").filter(pl.col("label") == 0)["row"].to_numpy()
    order: list[int] = []
    for i, unit in enumerate(units):
        if i in done:
            continue
        if len(unit) == 2 and len(order) % batch_size == batch_size - 1:
            while lone and (lone[0] in done or lone[0] <= i):
                lone.popleft()
            if lone:  # pull the next lone crop forward to close the batch
                j = lone.popleft()
                done.add(j)
                order += units[j]
            else:  # nothing alone left: close the batch with any real crop
                order.append(int(reals[rng.integers(len(reals))]))
        order += unit
    return order


def order_for(strategy: str, frames: pl.DataFrame, seed: int, epoch: int, batch_size: int,
              pairs: pl.DataFrame | None = None) -> list[int]:
    """One epoch's order of FRAMES rows by the configured strategy (``training.data.order``)."""
    if strategy == "shuffle":
        return epoch_order(frames.height, seed, epoch)
    if strategy == "balanced":
        return balanced_order(frames["label"].to_numpy(), seed, epoch, batch_size)
    if strategy == "paired":
        if pairs is None:
            raise ValueError("training.data.order 'paired' needs the dataset's pairs.parquet")
        return paired_order(frames, pairs, seed, epoch, batch_size)
    raise ValueError(f"training.data.order: unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")


def video_fraction(frames: pl.DataFrame, pairs: pl.DataFrame | None, fraction: float, seed: int) -> pl.DataFrame:
    """The crops of a seeded ``fraction`` of the videos, drawn by group: a real video with every fake
    made from it (``pairs``); a fake whose source real is not in ``frames`` is a group of its own."""
    if not 0 < fraction <= 1:
        raise ValueError(f"training.data.fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return frames
    source = dict(zip(pairs["fake_id"].to_list(), pairs["real_id"].to_list())) if pairs is not None else {}
    videos = frames["video_id"].unique(maintain_order=True).sort().to_list()
    present = set(videos)
    group = {v: source[v] if source.get(v) in present else v for v in videos}
    groups = sorted(set(group.values()))
    rng = np.random.default_rng(derive_seed(seed, "fraction"))
    keep = set(rng.choice(groups, size=max(1, round(fraction * len(groups))), replace=False).tolist())
    return frames.filter(pl.col("video_id").replace_strict(group, return_dtype=pl.String).is_in(list(keep)))
