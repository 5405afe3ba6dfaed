"""The training log (``train_log.parquet``): one row per optimiser step and one per validation.

Step values stay on the device in :class:`StepBuffer` until :meth:`StepBuffer.flush` reads them all
with one transfer (every ``log_every`` steps, before a checkpoint and at the end of an epoch). The
buffer also tracks, on the device, the longest run of consecutive non-finite steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import torch

from pipeline.core.files import replacing

# what a training step reports, as device scalars (pipeline.training.step), one column each in the log
TERMS = ("loss", "ce", "align", "unif", "acc", "fake_fraction", "skipped")

LOG_SCHEMA = {
    "kind": pl.String,  # "train" (one row per optimiser step), "val" (one row per epoch: the mean over the
    # validation sets) or "val:<dataset>/<split>" (each set, when there are several)
    "epoch": pl.Int32,
    "step": pl.Int64,  # global optimiser step (val rows: steps done so far)
    "lr": pl.Float64,
    "loss": pl.Float64,
    "ce": pl.Float64,
    "align": pl.Float64,
    "unif": pl.Float64,
    "acc": pl.Float64,  # train accuracy of the step (on the features the loss saw)
    "batch": pl.Int32,
    "fake_fraction": pl.Float64,  # share of fake crops in the step's batch (before slerp expansion)
    "skipped": pl.Boolean,  # non-finite loss: the optimiser step was skipped
    "seconds": pl.Float64,  # wall time of the step (mean over its log interval) / of the validation
    "frame_auroc": pl.Float64,
    "video_auroc": pl.Float64,
    "n_frames": pl.Int64,
    "n_videos": pl.Int64,
}


class NonFiniteLoss(RuntimeError):
    """More consecutive non-finite steps than ``engine.max_nonfinite``."""


class StepBuffer:
    """Per-step device values waiting for one read; see the module docstring."""

    def __init__(self, device: torch.device):
        self.pending: list[tuple[dict, dict]] = []
        self.streak = torch.zeros((), dtype=torch.int64, device=device)  # current non-finite run
        self.worst = torch.zeros((), dtype=torch.int64, device=device)  # longest since the last flush
        self.t0 = time.perf_counter()

    def add(self, host: dict, values: dict) -> None:
        """``host``: epoch, step, lr, batch (Python values); ``values``: the step's device scalars."""
        skipped = values["skipped"].to(torch.int64)
        self.streak = (self.streak + skipped) * skipped
        self.worst = torch.maximum(self.worst, self.streak)
        self.pending.append((host, values))

    def flush(self) -> tuple[list[dict], int]:
        """The pending rows as log dicts and the longest non-finite run among them (one host sync)."""
        if not self.pending:
            return [], 0
        stacked = torch.stack([torch.stack([v[k].float() for k in TERMS]) for _, v in self.pending])
        host_values = torch.cat([stacked.flatten(), self.worst.view(1).float()]).cpu().tolist()
        worst = int(host_values.pop())
        seconds = (time.perf_counter() - self.t0) / len(self.pending)
        rows = []
        for i, (host, _) in enumerate(self.pending):
            vals = dict(zip(TERMS, host_values[i * len(TERMS):(i + 1) * len(TERMS)]))
            vals["skipped"] = bool(vals["skipped"])
            rows.append({"kind": "train", **host, **vals, "seconds": seconds})
        self.pending, self.worst, self.t0 = [], self.streak.clone(), time.perf_counter()
        return rows, worst


def write_log(rows: list, path: Path) -> None:
    with replacing(path) as tmp:
        pl.DataFrame(rows, schema=LOG_SCHEMA).write_parquet(tmp)
