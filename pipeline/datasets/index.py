"""The index stage: a dataset's layout -> ``videos.parquet`` (+ ``completeness.json``).

The adapter named in the config (``pipeline.datasets.adapters``) yields one row per video with
``video_id, path, label, method, source_id, split`` (``pipeline.core.tables.VIDEOS``).
:func:`build_index` then probes each file (frame count, fps, size; an unreadable file gets an
``error`` and stays in the table; for imported crops the "video" is a folder of frame images),
compares the user's copy with the adapter's official test protocol (:func:`completeness`: counts,
and missing or extra videos where an official list names them), and assigns the videos of each
split to chunks of ``chunk_size``, one faces (or import) job per chunk.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from pipeline.datasets import adapters
from pipeline.core import layout, tables
from pipeline.datasets.adapters import DatasetLayoutError
from pipeline.core.files import write_json
from pipeline.core.video import ERROR_MISSING

__all__ = ["DatasetLayoutError", "list_videos", "probe_videos", "completeness", "build_index",
           "assign_chunks", "completeness_path"]

log = logging.getLogger("pipeline.index")

# --------------------------------------------------------------------------------------------


def list_videos(dataset: str, adapter: str, root: str | Path, options: dict | None = None) -> pl.DataFrame:
    """The adapter's rows as a DataFrame, with duplicate ids rejected."""
    spec = adapters.get(dataset, adapter)
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {dataset!r}: folder {root} does not exist")
    rows = list(spec.list(dataset, root, options or {}))
    if not rows:
        raise DatasetLayoutError(f"dataset {dataset!r}: the {adapter} adapter found no videos under {root}")
    df = pl.DataFrame(rows, schema_overrides={"source_id": pl.String, "mask_path": pl.String},
                      infer_schema_length=None).with_columns(dataset=pl.lit(dataset))
    if "mask_path" not in df.columns:  # only official trees with mask videos have them
        df = df.with_columns(mask_path=pl.lit(None, dtype=pl.String))
    dup = df.filter(pl.col("video_id").is_duplicated())["video_id"].unique().to_list()
    if dup:
        raise DatasetLayoutError(f"dataset {dataset!r}: duplicate video ids {dup[:5]}")
    return df


FINGERPRINT_BYTES = 1 << 20


def fingerprint(path: str | Path) -> str | None:
    """A short content digest of a video file (its size and its first and last MiB), or of a folder of
    frames (every file's name, size and first MiB): it changes when the content does, without reading
    whole datasets. ``None`` when the path cannot be read (the probe reports why)."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            size = f.stat().st_size
            h.update(f"{f.relative_to(path).as_posix() if f != path else ''}\0{size}\0".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(FINGERPRINT_BYTES))
                if not path.is_dir() and size > 2 * FINGERPRINT_BYTES:
                    fh.seek(size - FINGERPRINT_BYTES)
                    h.update(fh.read(FINGERPRINT_BYTES))
    except OSError:
        return None
    return h.hexdigest()[:16]


def probe_videos(paths: list[str], threads: int = 1) -> list[dict]:
    """``pipeline.core.video.probe`` for each path (threads: OpenCV releases the GIL while decoding); a
    folder of frame images (imported crops) is probed by ``pipeline.datasets.imports.probe_frames``."""
    from pipeline.datasets.imports import probe_frames
    from pipeline.core.video import probe

    def one(path):
        info = probe_frames(path) if Path(path).is_dir() else probe(path)
        return {**info, "fingerprint": fingerprint(path)}

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, paths))


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


def completeness_path(videos_parquet: str | Path) -> Path:
    """Where the index writes its completeness checks (the layout's place for them)."""
    return Path(layout.completeness_of(str(videos_parquet)))


def _counts(df: pl.DataFrame) -> dict:
    real = int((df["label"] == tables.LABEL_REAL).sum())
    return {"real": real, "fake": df.height - real, "total": df.height}


def check_protocol(df: pl.DataFrame, protocol: adapters.Protocol) -> dict:
    """One official split against the rows found: counts, and missing/extra ids where listed."""
    in_split = df.filter(pl.col("split") == protocol.split)
    absent = in_split.filter(pl.col("error").fill_null("") == ERROR_MISSING)
    present = in_split.filter(pl.col("error").fill_null("") != ERROR_MISSING)
    found_ids = set(present["video_id"].to_list())
    missing = set(absent["video_id"].to_list())
    extra: set = set()
    if protocol.ids is not None:
        missing |= protocol.ids - found_ids
        extra = found_ids - protocol.ids
    expected = {"real": protocol.real, "fake": protocol.fake,
                "total": protocol.total if protocol.total is not None else
                (protocol.real + protocol.fake if None not in (protocol.real, protocol.fake) else None)}
    found = _counts(present)
    off = [k for k, v in expected.items() if v is not None and found[k] != v]
    parts = [f"{found['total']} of {expected['total']} videos found" if expected["total"] is not None else
             f"{found['total']} videos found"]
    parts += [f"{k} {found[k]} (expected {expected[k]})" for k in ("real", "fake") if k in off]
    for what, ids in (("missing", missing), ("extra", extra)):
        if ids:
            shown = sorted(ids)
            parts.append(f"{what}: {', '.join(shown[:5])}" + (f" (+{len(shown) - 5} more)" if len(shown) > 5 else ""))
    return {"name": protocol.name, "split": protocol.split, "expected": expected, "found": found,
            "missing": sorted(missing), "extra": sorted(extra), "complete": not (off or missing or extra),
            "message": f"{protocol.name}: " + ", ".join(parts)}


def completeness(df: pl.DataFrame, adapter: str, options: dict | None) -> list[dict]:
    """The adapter's official protocols checked against the index (``df`` with probe errors)."""
    return [check_protocol(df, p) for p in adapters.get("?", adapter).protocol(options or {})]


def build_index(dataset: str, adapter: str, root: str | Path, options: dict | None, out_path: str | Path,
                chunk_size: int, threads: int = 1, chunk_seed: int = 0) -> pl.DataFrame:
    """List, probe and chunk a dataset's videos; write ``videos.parquet`` and, beside it,
    ``completeness.json`` (the official protocol checks, warned about when incomplete)."""
    df = list_videos(dataset, adapter, root, options)
    probes = probe_videos(df["path"].to_list(), threads)
    df = df.with_columns(pl.DataFrame(probes, schema={"frame_count": pl.Int64, "fps": pl.Float64,
                                                      "width": pl.Int32, "height": pl.Int32,
                                                      "error": pl.String, "fingerprint": pl.String}))
    df = assign_chunks(df, chunk_size, chunk_seed)
    for row in df.filter(pl.col("error").is_not_null()).iter_rows(named=True):
        log.warning("%s: %s is unreadable (%s); it is kept in the index and reported", dataset,
                    row["video_id"], row["error"])
    checks = completeness(df, adapter, options)
    for check in checks:
        if not check["complete"]:
            log.warning("%s: %s. Published numbers use the complete set: check your copy", dataset, check["message"])
    write_json(completeness_path(out_path), {"dataset": dataset, "adapter": adapter, "checks": checks},
               sort_keys=True)
    tables.write_parquet(df, out_path, tables.VIDEOS, "videos")
    log.info("%s: %d videos (%s), %d unreadable, %d chunks", dataset, df.height,
             ", ".join(f"{s}={n}" for s, n in df.group_by("split").len().sort("split").iter_rows()),
             df["error"].is_not_null().sum(), df.select("split", "chunk").unique().height)
    return tables.conform(df, tables.VIDEOS, "videos")
