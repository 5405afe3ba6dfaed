"""Training subsets of a dataset (arXiv 2508.06248, Fig. 3): paired and unpaired training sets.

Per split, the *sources* (real videos that some fake of the same split was made from, both readable)
are shuffled with a seeded draw and cut in two halves, A and B (B gets the odd one):

* ``paired``: the reals of A and every fake made from them;
* ``unpaired``: the same reals of A and as many fakes, method by method, drawn from the fakes made
  from B's reals, so the two sets have the same reals, the same number of fakes and the same method
  mix, and no fake of ``unpaired`` was made from a real in it.

``subsets.parquet`` holds one row per (subset, video): ``subset, split, video_id, label, method,
source_id, half``. A model's ``training.data.subset`` keeps the training crops of its subset's videos
(:func:`select_training`, which also applies ``training.data.methods``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

SUBSETS = ("paired", "unpaired")
COLUMNS = {"subset": pl.String, "split": pl.String, "video_id": pl.String, "label": pl.Int8,
           "method": pl.String, "source_id": pl.String, "half": pl.String}


def _rng(seed: int, split: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|subsets|{split}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _sources(videos: pl.DataFrame, pairs: pl.DataFrame, split: str) -> pl.DataFrame:
    """The split's (fake_id, method, real_id) links whose fake and real are both readable videos of it."""
    ok = videos.filter(pl.col("error").is_null() & (pl.col("split") == split))
    fakes, reals = set(ok.filter(pl.col("label") == 1)["video_id"]), set(ok.filter(pl.col("label") == 0)["video_id"])
    return (pairs.filter((pl.col("fake_split") == split) & (pl.col("real_split") == split)
                         & pl.col("fake_id").is_in(list(fakes)) & pl.col("real_id").is_in(list(reals)))
            .select("fake_id", method="fake_method", real_id="real_id").unique().sort("fake_id"))


def _unpaired_fakes(links: pl.DataFrame, half_a: set, half_b: set, rng, where: str) -> list[str]:
    """Fakes of half B's reals, as many per method as half A has."""
    chosen = []
    for method, n in sorted(links.filter(pl.col("real_id").is_in(list(half_a)))
                            .group_by("method").len().iter_rows()):
        pool = links.filter(pl.col("real_id").is_in(list(half_b)) & (pl.col("method") == method))["fake_id"]
        if pool.len() < n:
            raise ValueError(f"{where}: method {method!r} has {n} fakes made from half A's reals but only "
                             f"{pool.len()} made from half B's; the unpaired set cannot match the paired one "
                             f"(each real needs as many fakes of each method)")
        chosen += sorted(rng.choice(pool.sort().to_list(), size=n, replace=False).tolist())
    return chosen


def draw_split(videos: pl.DataFrame, pairs: pl.DataFrame, split: str, seed: int, where: str = "subsets") -> pl.DataFrame:
    """The paired and unpaired subsets of one split (:data:`COLUMNS` rows; empty without sources)."""
    links = _sources(videos, pairs, split)
    sources = sorted(set(links["real_id"]))
    if not sources:
        return pl.DataFrame(schema=COLUMNS)
    rng = _rng(seed, split)
    order = [sources[i] for i in rng.permutation(len(sources))]
    half_a, half_b = set(order[: len(order) // 2]), set(order[len(order) // 2:])
    paired = sorted(half_a) + links.filter(pl.col("real_id").is_in(list(half_a)))["fake_id"].to_list()
    unpaired = sorted(half_a) + _unpaired_fakes(links, half_a, half_b, rng, f"{where} {split}")
    half = {**{r: "A" for r in half_a}, **{r: "B" for r in half_b}}
    info = videos.filter(pl.col("split") == split).select("video_id", "label", "method", "source_id")
    rows = pl.DataFrame({"subset": ["paired"] * len(paired) + ["unpaired"] * len(unpaired),
                         "video_id": paired + unpaired})
    out = rows.join(info, on="video_id", how="left").with_columns(
        split=pl.lit(split), half=pl.col("source_id").replace_strict(half, default=None))
    return out.select(list(COLUMNS)).cast(COLUMNS)


def build_subsets(videos_path, pairs_path, out_path, seed: int, splits: list[str] | None = None) -> dict:
    """Write ``subsets.parquet`` for ``splits`` (default: every split with sources); returns counts."""
    videos, pairs = pl.read_parquet(videos_path), pl.read_parquet(pairs_path)
    splits = splits or sorted(set(pairs["fake_split"].drop_nulls()))
    table = pl.concat([draw_split(videos, pairs, s, seed, where=str(out_path)) for s in splits], how="vertical")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{out_path}.tmp")
    table.write_parquet(tmp)
    tmp.replace(out_path)
    counts = table.group_by("split", "subset", "label").len().sort("split", "subset", "label")
    return {f"{s}/{sub}/{'fake' if lab else 'real'}": n for s, sub, lab, n in counts.iter_rows()}


def select_training(crops: pl.DataFrame, data: dict, subsets_path=None, split: str | None = None) -> pl.DataFrame:
    """``crops`` (FRAMES rows, or features rows) of ``data.methods`` only, and of the videos of subset
    ``data.subset`` of ``split`` (read from ``subsets_path``) when the model sets one."""
    methods, subset = data.get("methods"), data.get("subset")
    if methods:
        crops = crops.filter(pl.col("method").is_in(list(methods)))
    if subset:
        if subsets_path is None:
            raise ValueError(f"training.data.subset {subset!r} needs the dataset's subsets.parquet")
        table = pl.read_parquet(subsets_path)
        ids = table.filter((pl.col("subset") == subset) & (pl.col("split") == (split or data["train_split"])))
        if ids.height == 0:
            raise ValueError(f"{subsets_path}: no {subset!r} videos in split {split or data['train_split']!r} "
                             "(the split has no real video with a fake made from it)")
        crops = crops.filter(pl.col("video_id").is_in(ids["video_id"].to_list()))
    return crops
