"""Dataset adapters and the index stage: a dataset's own layout -> ``videos.parquet``.

Every adapter yields one row per video with ``video_id, path, label, method, source_id, split``
(DESIGN.md §3, ``pipeline.tables.VIDEOS``). :func:`build_index` then probes each file (frame count,
fps, size; an unreadable file gets an ``error`` and stays in the table) and assigns the videos of
each split to chunks of ``chunk_size``, one faces job per chunk.

Adapters:

* ``csv``: ``<root>/labels.csv`` with ``video_id,path,label,method,source_id,split`` (path relative
  to root). The demo dataset is written in this form; it also suits any hand-made list.
* ``ffpp``: FaceForensics++ c23, either the official tree (``original_sequences/youtube/c23/videos``,
  ``manipulated_sequences/<Method>/c23/videos``) or the Kaggle mirror (``FaceForensics++_C23/<Method>``),
  with the official splits: a pair ``[A, B]`` puts reals A, B and fakes ``A_B``, ``B_A`` in its split.
* ``celebdf``: Celeb-DF v2 (``Celeb-real``, ``YouTube-real``, ``Celeb-synthesis``,
  ``List_of_testing_videos.txt`` whose label 1 means *real*).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Iterator

import polars as pl

from pipeline import tables

log = logging.getLogger("pipeline.index")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class DatasetLayoutError(FileNotFoundError):
    """The dataset tree is not where, or not what, the adapter expects."""


# --------------------------------------------------------------------------------------------
# csv


def adapter_csv(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    path = root / options.get("file", "labels.csv")
    if not path.is_file():
        raise DatasetLayoutError(f"dataset {dataset!r}: expected a label file {path} with columns "
                                 "video_id,path,label,method,source_id,split")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"video_id", "path", "label", "split"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetLayoutError(f"dataset {dataset!r}: {path} lacks columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["label"])
                assert label in (0, 1)
            except (ValueError, AssertionError):
                raise DatasetLayoutError(f"dataset {dataset!r}: {path} line {line}: label must be 0 (real) "
                                         f"or 1 (fake), got {row['label']!r}") from None
            yield {
                "video_id": row["video_id"],
                "path": str(root / row["path"]),
                "label": label,
                "method": row.get("method") or ("real" if label == 0 else "fake"),
                "source_id": row.get("source_id") or (row["video_id"] if label == 0 else None),
                "split": row["split"],
            }


# --------------------------------------------------------------------------------------------
# FaceForensics++

FFPP_FOLDERS = {  # folder name in both layouts -> short method name
    "original": "real",
    "Deepfakes": "DF",
    "Face2Face": "F2F",
    "FaceSwap": "FS",
    "NeuralTextures": "NT",
    "FaceShifter": "FSh",
    "DeepFakeDetection": "DFD",
}


def ffpp_splits() -> dict[str, str]:
    """Real video id -> split, from the official split files shipped with the package."""
    out = {}
    for split in ("train", "val", "test"):
        pairs = json.loads(resources.files("pipeline").joinpath("assets", "ffpp_splits", f"{split}.json").read_text())
        for a, b in pairs:
            out[a] = out[b] = split
    return out


def _ffpp_folders(root: Path, compression: str) -> dict[str, Path]:
    """Method -> folder of videos, for the official tree or the Kaggle mirror."""
    found = {}
    official = {"real": root / "original_sequences" / "youtube" / compression / "videos"}
    for folder, method in FFPP_FOLDERS.items():
        if method != "real":
            official[method] = root / "manipulated_sequences" / folder / compression / "videos"
    if any(p.is_dir() for p in official.values()):
        return {m: p for m, p in official.items() if p.is_dir()}
    mirrors = sorted(root.glob("**/FaceForensics++_C23"))
    if mirrors:
        for folder, method in FFPP_FOLDERS.items():
            if (mirrors[0] / folder).is_dir():
                found[method] = mirrors[0] / folder
    return found


def adapter_ffpp(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    methods = options.get("methods", ["real", "DF", "F2F", "FS", "NT"])
    folders = _ffpp_folders(root, options.get("compression", "c23"))
    if not folders:
        raise DatasetLayoutError(
            f"dataset {dataset!r}: no FaceForensics++ videos under {root}. Expected the official tree "
            "(original_sequences/youtube/c23/videos, manipulated_sequences/<Method>/c23/videos) or the "
            "Kaggle mirror (FaceForensics++_C23/<original|Deepfakes|Face2Face|FaceSwap|NeuralTextures>/*.mp4)")
    absent = [m for m in methods if m not in folders]
    if absent:
        raise DatasetLayoutError(f"dataset {dataset!r}: methods {absent} not found under {root} "
                                 f"(found: {sorted(folders)})")
    split_of = ffpp_splits()
    for method in methods:
        for path in sorted(p for p in folders[method].iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS):
            stem = path.stem
            if method == "DFD":  # DeepFakeDetection: no official split, all videos are test
                yield {"video_id": f"DFD/{stem}", "path": str(path), "label": 1, "method": "DFD",
                       "source_id": None, "split": "test"}
                continue
            target = stem.split("_")[0]
            if target not in split_of:
                log.warning("ffpp: %s is not in the official splits; skipped", path)
                continue
            if method == "real":
                yield {"video_id": f"real/{stem}", "path": str(path), "label": 0, "method": "real",
                       "source_id": f"real/{stem}", "split": split_of[target]}
            else:  # fake A_B keeps the frames and background of real video A
                yield {"video_id": f"{method}/{stem}", "path": str(path), "label": 1, "method": method,
                       "source_id": f"real/{target}", "split": split_of[target]}


# --------------------------------------------------------------------------------------------
# Celeb-DF v2

CELEBDF_FOLDERS = ("Celeb-real", "YouTube-real", "Celeb-synthesis")


def adapter_celebdf(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    list_file = root / options.get("test_list", "List_of_testing_videos.txt")
    if not list_file.is_file():
        raise DatasetLayoutError(f"dataset {dataset!r}: expected {list_file} (the official test list) and "
                                 f"the folders {', '.join(CELEBDF_FOLDERS)} under {root}")
    test = {}
    for n, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        flag, rel = line.split()
        if flag not in ("0", "1"):
            raise DatasetLayoutError(f"{list_file} line {n}: expected '<0|1> <folder>/<file>', got {line!r}")
        test[rel] = 0 if flag == "1" else 1  # the list says 1 = real; we say 0 = real
    splits = options.get("splits", ["test"])
    rels = dict(test)
    if "train" in splits:  # everything not in the test list
        for folder in CELEBDF_FOLDERS:
            for p in sorted((root / folder).glob("*.mp4")):
                rel = f"{folder}/{p.name}"
                rels.setdefault(rel, 0 if folder != "Celeb-synthesis" else 1)
    for rel, label in sorted(rels.items()):
        split = "test" if rel in test else "train"
        if split not in splits:
            continue
        folder, name = rel.split("/", 1)
        stem = Path(name).stem
        video_id = f"{folder}/{stem}"
        if label == 0:
            source = video_id
        else:  # idX_idY_NNNN is made from Celeb-real/idX_NNNN
            parts = stem.split("_")
            source = f"Celeb-real/{parts[0]}_{parts[-1]}" if len(parts) == 3 else None
        yield {"video_id": video_id, "path": str(root / rel), "label": label,
               "method": "real" if label == 0 else folder, "source_id": source, "split": split}


ADAPTERS = {"csv": adapter_csv, "ffpp": adapter_ffpp, "celebdf": adapter_celebdf}


# --------------------------------------------------------------------------------------------


def list_videos(dataset: str, adapter: str, root: str | Path, options: dict | None = None) -> pl.DataFrame:
    """The adapter's rows as a DataFrame, with duplicate ids rejected."""
    if adapter not in ADAPTERS:
        raise ValueError(f"dataset {dataset!r}: unknown adapter {adapter!r} (known: {', '.join(ADAPTERS)})")
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {dataset!r}: folder {root} does not exist")
    rows = list(ADAPTERS[adapter](dataset, root, options or {}))
    if not rows:
        raise DatasetLayoutError(f"dataset {dataset!r}: the {adapter} adapter found no videos under {root}")
    df = pl.DataFrame(rows, schema_overrides={"source_id": pl.String}).with_columns(dataset=pl.lit(dataset))
    dup = df.filter(pl.col("video_id").is_duplicated())["video_id"].unique().to_list()
    if dup:
        raise DatasetLayoutError(f"dataset {dataset!r}: duplicate video ids {dup[:5]}")
    return df


def probe_videos(paths: list[str], threads: int = 1) -> list[dict]:
    """``pipeline.video.probe`` for each path (threads: OpenCV releases the GIL while decoding)."""
    from pipeline.video import probe

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(probe, paths))


def shuffle_key(video_id: str, seed: int) -> int:
    """A video's place in the seeded order of its split: a hash of (seed, id), so it does not depend
    on which other videos exist (adding a video moves only the videos ordered after it)."""
    digest = hashlib.blake2b(f"{seed}\0{video_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits polars' Int64


def assign_chunks(df: pl.DataFrame, chunk_size: int, seed: int = 0) -> pl.DataFrame:
    """Deal the videos of each split into chunks of ``chunk_size`` in a seeded shuffled order.

    Datasets list their videos grouped by method (FF++: every real, then every Deepfakes fake, ...);
    chunks in that order would each hold one method and one label, and a training loader reading a
    few shards at a time would see one class per batch. Shuffled chunks mix methods and labels in
    proportion to the split.
    """
    df = df.with_columns(_order=pl.Series([shuffle_key(v, seed) for v in df["video_id"]], dtype=pl.Int64))
    df = df.sort("split", "_order", "video_id")
    return df.with_columns(
        chunk=(pl.int_range(pl.len()).over("split") // chunk_size).cast(pl.Int32)).drop("_order")


def build_index(dataset: str, adapter: str, root: str | Path, options: dict | None, out_path: str | Path,
                chunk_size: int, threads: int = 1, chunk_seed: int = 0) -> pl.DataFrame:
    """List, probe and chunk a dataset's videos; write ``videos.parquet``. Returns the table."""
    df = list_videos(dataset, adapter, root, options)
    probes = probe_videos(df["path"].to_list(), threads)
    df = df.with_columns(pl.DataFrame(probes, schema={"frame_count": pl.Int64, "fps": pl.Float64,
                                                      "width": pl.Int32, "height": pl.Int32,
                                                      "error": pl.String}))
    df = assign_chunks(df, chunk_size, chunk_seed)
    for row in df.filter(pl.col("error").is_not_null()).iter_rows(named=True):
        log.warning("%s: %s is unreadable (%s); it is kept in the index and reported", dataset,
                    row["video_id"], row["error"])
    tables.write_parquet(df, out_path, tables.VIDEOS, "videos")
    log.info("%s: %d videos (%s), %d unreadable, %d chunks", dataset, df.height,
             ", ".join(f"{s}={n}" for s, n in df.group_by("split").len().sort("split").iter_rows()),
             df["error"].is_not_null().sum(), df.select("split", "chunk").unique().height)
    return tables.conform(df, tables.VIDEOS, "videos")


def chunks(videos_parquet: str | Path, splits: list[str] | None = None) -> list[tuple[str, int]]:
    """The (split, chunk) pairs of an index, one faces job each; only those of ``splits`` if given."""
    df = pl.read_parquet(videos_parquet, columns=["split", "chunk"]).unique().sort("split", "chunk")
    if splits is not None:
        df = df.filter(pl.col("split").is_in(splits))
    return [(s, int(c)) for s, c in df.iter_rows()]


def select_chunk(videos_parquet: str | Path, split: str, chunk: int) -> pl.DataFrame:
    """The videos one faces job processes."""
    df = pl.read_parquet(videos_parquet).filter((pl.col("split") == split) & (pl.col("chunk") == chunk))
    if df.height == 0:
        raise ValueError(f"{videos_parquet} has no videos in split {split!r} chunk {chunk}; "
                         "the index changed since this job was planned: run the workflow again")
    return df
