"""One chunk of videos -> one WebDataset tar shard and its per-shard Parquet table."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

import cv2
import polars as pl

from pipeline.core import logs, tables
from pipeline.core.shards import write_shard
from .backends import BACKENDS, make_backend, preflight
from .extract import CropSettings, extract_video

log = logging.getLogger("pipeline.faces")

_worker_state: dict = {}


@contextlib.contextmanager
def _main_not_reimported():
    """Start worker processes without re-running the parent's ``__main__`` script.

    ``spawn``/``forkserver`` children re-execute the parent's main *script* (found through
    ``__main__.__file__``) before unpickling their task. Snakemake ``script:`` files and other
    unguarded scripts would then run ``extract_chunk`` again in every worker and fail. The
    workers only need :mod:`pipeline.faces`, so the main script's path is hidden while the pool
    starts. (A main *module* run with ``-m`` is imported by name and is left alone.)
    """
    main = sys.modules.get("__main__")
    hide = main is not None and getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
    saved = main.__file__ if hide else None
    if hide:
        del main.__file__
    try:
        yield
    finally:
        if hide:
            main.__file__ = saved


def _worker_init(backend: str, backend_options: dict, settings: CropSettings) -> None:
    """Pool initializer: build this worker's backend once."""
    cv2.setNumThreads(1)
    _worker_state["backend"] = make_backend(backend, **backend_options)
    _worker_state["settings"] = settings


def _worker_run(video: dict) -> list[tuple[dict, bytes | None]]:
    return extract_video(video, _worker_state["backend"], _worker_state["settings"])


def _shard_json(rec: dict) -> dict:
    meta = {
        "dataset": rec["dataset"],
        "video_id": rec["video_id"],
        "frame_idx": rec["frame_idx"],
        "label": None if rec["label"] is None else int(rec["label"]),
        "method": rec["method"],
        "split": rec["split"],
        "source_id": rec["source_id"],
        "box": [rec["box_x0"], rec["box_y0"], rec["box_x1"], rec["box_y1"]],
        "score": rec["det_score"],
        "n_faces": rec["n_faces"],
        "points5": rec["points5"],
    }
    return meta


def _log_video(video_id: str, records: list[dict]) -> None:
    failed = Counter(r["status"] for r in records if r["status"] != tables.STATUS_OK)
    if not failed:
        return
    if records[0]["frame_idx"] is None:  # decode_error / video_error: the video as a whole
        log.warning("%s: %s", video_id, records[0]["status"])
        return
    detail = ", ".join(f"{n} {status}" for status, n in sorted(failed.items()))
    log.info("%s: %d/%d sampled frames without crop (%s)", video_id, sum(failed.values()), len(records), detail)


def _results(rows: list[dict], backend: str, backend_options: dict, settings: CropSettings, threads: int,
             mp_context: str):
    """``(pool or None, iterator of extract_video results in the order of rows)``."""
    if threads > 1 and len(rows) > 1:
        ctx = multiprocessing.get_context(mp_context)
        with _main_not_reimported():
            pool = ctx.Pool(min(threads, len(rows)), initializer=_worker_init,
                            initargs=(backend, backend_options, settings))
        return pool, pool.imap(_worker_run, rows, chunksize=1)
    if not rows:
        return None, iter(())
    be = make_backend(backend, **backend_options)
    return None, (extract_video(v, be, settings) for v in rows)


def _write(shard, name: str, rows: list[dict], results, progress) -> None:
    """Add every frame of ``results`` to ``shard`` (a :func:`pipeline.core.shards.write_shard`)."""
    bar = logs.progress(total=len(rows), desc=f"faces {name}", unit="video")
    with bar:
        for done, (video, items) in enumerate(zip(rows, results), start=1):
            for rec, crop in items:
                shard.add(rec, crop, _shard_json(rec) if crop is not None else None)
            _log_video(video["video_id"], [r for r, _ in items])
            bar.set_postfix_str(f"{shard.crops} crops of {len(shard.records)} frames", refresh=False)
            bar.update(1)
            if progress is not None:
                progress(done, len(rows))


def extract_chunk(videos: pl.DataFrame, tar_path, parquet_path, backend: str = "dlib",
                  backend_options: dict | None = None, threads: int = 1,
                  progress: Callable[[int, int], None] | None = None, mp_context: str = "spawn",
                  **crop) -> dict:
    """Crop all videos of one chunk into a WebDataset tar and its per-shard Parquet.

    ``crop`` holds the :class:`CropSettings` fields (``num_frames``, ``size``, ``scale``,
    ``points``, ``choice``, ``min_side``, ``codec``, ``png_level``). The backend's model files are checked
    before any video is opened (a missing file stops the job with a message naming it).

    Videos are processed sorted by ``video_id`` (deterministic output). With ``threads > 1`` a
    ``multiprocessing`` pool of that many workers (each builds its own backend once) runs
    :func:`extract_video`; ``imap`` keeps the output order, so the result is identical to
    ``threads=1``. ``mp_context`` is the start method (``spawn`` avoids forking a process whose
    OpenCV/polars thread pools are running); workers never re-run the caller's main script, so
    unguarded scripts (Snakemake ``script:`` files) can call this.

    Writes:

    * ``tar_path``: one sample per crop, ``{"__key__", "qoi" or "png", "json"}`` with the JSON fields
      dataset, video_id, frame_idx, label, method, split, source_id, box, score, n_faces, points5;
      written with ``mtime=0`` to a temp name and renamed at the end (byte-reproducible, never half
      written);
    * ``parquet_path``: every sampled frame (``tables.FRAMES``) with its ``status``; ``shard`` is
      ``str(tar_path)`` on every row of this chunk, ``key`` is null where no crop was stored.

    No video or frame stops the job: each outcome is a status. A progress bar (log lines in a job's
    log) counts videos and crops; ``progress(done, total)`` is also called after each video; failures
    are logged (logger ``pipeline.faces``, one line per affected video).
    Returns stats: ``videos``, ``frames_sampled`` (rows with a frame index), ``crops``,
    ``failures`` (rows per status other than ``ok``).
    """
    settings = CropSettings(**crop)
    if backend not in BACKENDS:
        raise ValueError(f"unknown face backend {backend!r}; known backends: {', '.join(sorted(BACKENDS))}")
    backend_options = dict(backend_options or {})
    preflight(backend, backend_options)
    tar_path, parquet_path = Path(tar_path), Path(parquet_path)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    rows = videos.sort("video_id").to_dicts() if videos.height else []

    pool, results = _results(rows, backend, backend_options, settings, threads, mp_context)
    try:
        with write_shard(tar_path, parquet_path) as shard:  # both renamed only once both are complete
            _write(shard, tar_path.name, rows, results, progress)
            if pool is not None:
                pool.close()
                pool.join()
        records = shard.records
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        raise

    failures = Counter(r["status"] for r in records if r["status"] != tables.STATUS_OK)
    return {
        "videos": len(rows),
        "frames_sampled": sum(1 for r in records if r["frame_idx"] is not None),
        "crops": sum(1 for r in records if r["status"] == tables.STATUS_OK),
        "failures": dict(sorted(failures.items())),
    }
