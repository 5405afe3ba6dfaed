"""What an export starts from: the trained model as ``predict`` resolves it, and the real face crops
every export is checked on.

The crops are the test crops of the workflow's benchmarks (read from their shards, as the evaluation
reads them) when the workflow's results are here, else the aligned face-crop images the user gives.
They are kept encoded (QOI or PNG, as the faces stage stores them), so the PyTorch reference scores them
through :func:`pipeline.evaluation.score_crops`, the code path of ``predict`` and of the evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core import codec, layout
from pipeline.core import config as pconfig
from pipeline.core.shards import index_members


class ExportError(Exception):
    """An export that cannot be made or that failed its check; the message says why and what to do."""


@dataclass
class CheckCrops:
    """Face crops to check an export on: ``crops`` encoded as the faces stage stores them, ``names`` where
    each comes from, ``source`` a sentence for the export's metadata."""

    names: list[str]
    crops: list[bytes]
    source: str

    def arrays(self) -> list:
        """The crops as RGB ``uint8 [H, W, 3]`` arrays."""
        return [codec.decode(b, n) for b, n in zip(self.crops, self.names)]


def workflow_config(config_path) -> dict | None:
    """The validated workflow config at ``config_path`` (None when there is none)."""
    return None if config_path is None else pconfig.validate_config(pconfig.load(config_path), source=str(config_path))


def check_crops(config: dict | None, given: list[str] | None, max_crops: int) -> CheckCrops:
    """Crops to check an export on: ``given`` (image files or folders of them) when given, else the test
    crops of ``config``'s benchmarks; at most ``max_crops``, evenly spread. Raises :class:`ExportError`
    when there are none."""
    if max_crops < 1:
        raise ExportError(f"--max-crops {max_crops}: check on at least one crop")
    if given:
        names, crops = _given_crops(given)
        where = f"{len(names)} face-crop images given with --crops"
    else:
        names, crops, where = _benchmark_crops(config)
    if not crops:
        raise ExportError("no face crops to check the export on: run export from the folder of the workflow that "
                          "trained the model, after its faces stage made the benchmarks' test crops, or give "
                          "aligned face-crop images with --crops FILE_OR_FOLDER")
    step = max(1, -(-len(crops) // max_crops))
    names, crops = names[::step][:max_crops], crops[::step][:max_crops]
    return CheckCrops(names, crops, f"{len(crops)} crops (one in {step} of {where})" if step > 1 else
                      f"{len(crops)} crops ({where})")


def _given_crops(given: list[str]) -> tuple[list[str], list[bytes]]:
    from PIL import Image

    from pipeline.predict import expand_inputs

    inputs, problems = expand_inputs(given)
    problems += [(p, "a video: give aligned face-crop images (the faces stage's crops)") for p, k in inputs
                 if k != "image"]
    if problems:
        raise ExportError("--crops: " + "; ".join(f"{p}: {why}" for p, why in problems))
    names, crops = [], []
    for path, _ in inputs:
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except Exception as err:
            raise ExportError(f"--crops: {path} cannot be read as an image ({type(err).__name__})") from None
        names.append(str(path))
        crops.append(codec.encode(np.asarray(rgb), "png"))  # lossless: the pixels as read
    return names, crops


def _benchmark_crops(config: dict | None) -> tuple[list[str], list[bytes], str]:
    """Every stored crop of the benchmarks' test splits, in the frames tables' order."""
    import polars as pl

    if config is None:
        return [], [], ""
    L = layout.from_config(config)
    names, crops, used, members = [], [], [], {}
    for ds, split in dict.fromkeys((b["dataset"], b["split"]) for _, b in sorted(config["benchmarks"].items())):
        if not Path(L.frames(ds)).is_file():
            continue
        rows = pl.read_parquet(L.frames(ds)).filter((pl.col("split") == split) & pl.col("key").is_not_null())
        for shard, key in rows.select("shard", "key").iter_rows():
            names.append(f"{ds}/{split}/{key}")
            crops.append(_read_crop(shard, key, members))
        used.append(f"{ds} ({split})")
    return names, crops, f"the stored crops of the benchmarks {', '.join(used)}"


def _read_crop(shard: str, key: str, indexed: dict) -> bytes:
    """The encoded crop of ``key`` in ``shard`` (its members checked once: ``indexed`` keeps them)."""
    if shard not in indexed:
        indexed[shard] = index_members(shard)
    members = indexed[shard]
    name = next((f"{key}.{ext}" for ext in codec.CODECS if f"{key}.{ext}" in members), None)
    if name is None:
        raise ExportError(f"shard {shard} has no crop for {key!r}: the frames table and the shard disagree; rerun the "
                          "workflow to rebuild them")
    offset, size = members[name]
    with open(shard, "rb") as fh:
        return os.pread(fh.fileno(), size, offset)
