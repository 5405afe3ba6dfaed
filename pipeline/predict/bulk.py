"""Bulk scoring: the ``predict`` sets of the config as a workflow target (``results/predict/<name>.parquet``).

A set's files (its ``folders``, searched recursively, its ``files`` and the lines of its ``list`` file) are
listed while the workflow plans, each with its identity: path, size and modification time. They are
scored in chunks of ``chunk_size`` files, one job per chunk, each job running ``predict``'s own code
(:func:`pipeline.predict.predict_files`) on its files. A chunk is named by the digest of its files'
identities, and records its files when it ends; the next plan keeps every recorded chunk that still holds
a current file as it is and deals only the files no chunk holds (new or modified) into new chunks. So
adding files to a folder adds jobs for those files only, and no existing chunk is redone. The gather
writes one row per current file, in listing order, from the chunks' rows.

Planning imports only the standard library, polars and :mod:`pipeline.core` from here; the jobs
import the rest when they run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.core import layout
from pipeline.core.config import runs
from .inputs import expand_inputs

SKIPPED, NOT_SCORED = "skipped", "not_scored"  # statuses of files no job scored (besides predict's own)


def model_dir(config: dict, name: str) -> str:
    """The model folder of predict set ``name``: a run of this config by name (an unseeded model's name, or
    ``<model>-seed<N>``), else the folder given."""
    model = config["predict"][name]["model"]
    return layout.from_config(config).model_dir(model) if model in runs(config) else model.rstrip("/")


def set_paths(entry: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """``(paths, problems)``: the folders, files and list-file lines of a set, in that order (relative
    paths are relative to the workflow's folder); a list file that cannot be read is a problem
    ``(path, why)``."""
    paths = list(entry.get("folders", [])) + list(entry.get("files", []))
    problems = []
    if entry.get("list"):
        try:
            lines = Path(entry["list"]).read_text().splitlines()
        except OSError as err:
            problems.append((entry["list"], f"list file cannot be read ({err.strerror or err})"))
            lines = []
        paths += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return paths, problems


def list_set(entry: dict) -> tuple[list[list], list[tuple[str, str]]]:
    """``(files, problems)``: each file of a set as ``[path, kind, size, mtime_ns]`` in the order
    ``predict`` takes them, and ``(path, why)`` for what is not a video or image file."""
    paths, problems = set_paths(entry)
    inputs, more = expand_inputs(paths)
    files = []
    for path, kind in inputs:
        st = path.stat()
        files.append([str(path), kind, st.st_size, st.st_mtime_ns])
    return files, problems + [(str(p), why) for p, why in more]


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def read_records(folder: str | Path) -> dict[str, list[list]]:
    """Chunk -> the files it was given, from the records of a set's chunk folder (unreadable ones skipped)."""
    out = {}
    for path in sorted(Path(folder).glob("*.members.json")):
        try:
            members = json.loads(path.read_text())["members"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out[path.name.removesuffix(".members.json")] = [list(m) for m in members]
    return out


def plan_chunks(files: list[list], records: dict[str, list[list]], chunk_size: int) -> dict[str, list[list]]:
    """Chunk -> its files: every recorded chunk that holds a current file (with all the files it
    recorded: its job's input as it was), then the files no such chunk holds, in order, dealt into new
    chunks of ``chunk_size``, each named by the digest of its files.

    A new chunk's files depend only on the files not yet recorded, so the plan of a job that runs later
    (a cluster job plans again), after other new chunks have recorded theirs, gives the same chunks."""
    current = {tuple(f) for f in files}
    held, chunks = set(), {}
    for chunk, members in sorted(records.items()):
        mine = {tuple(m) for m in members} & current - held
        if mine:
            chunks[chunk] = members
            held |= mine
    new = [f for f in files if tuple(f) not in held]
    for i in range(0, len(new), chunk_size):
        block = new[i:i + chunk_size]
        chunks[digest(block)] = block
    return dict(sorted(chunks.items()))


def plan_set(config: dict, name: str) -> dict:
    """The plan of predict set ``name``: ``files``, ``problems``, ``chunks`` (:func:`plan_chunks`) and
    ``listing``, the digest of what was listed (the gather reruns when it changes)."""
    entry = config["predict"][name]
    files, problems = list_set(entry)
    records = read_records(Path(layout.from_config(config).predict_members(name, "x")).parent)
    return {"files": files, "problems": problems, "chunks": plan_chunks(files, records, entry["chunk_size"]),
            "listing": digest([files, problems])}


# ---- the jobs --------------------------------------------------------------------------------------

IDENTITY = ["path", "kind", "size", "mtime_ns"]


def score_chunk(members: list[list], model: str, config: dict, out, record, *, batch_size: int = 64,
                device=None) -> int:
    """Score the files of one chunk as ``python -m pipeline predict --model MODEL --config CONFIG`` does;
    write one row per file (predict's ``--out`` columns and the file's identity) to ``out`` and the
    files to ``record``. Returns the number of files scored."""
    import polars as pl

    from pipeline.core.files import write_json
    from pipeline.core.tables import write_parquet
    from .files import predict_files
    from .output import FILE_COLUMNS, file_table
    from .resolve import resolve_model

    resolved = resolve_model(model, config=config)
    results = predict_files(resolved, [(Path(p), kind) for p, kind, _, _ in members], device=device,
                            batch_size=batch_size)
    ids = pl.DataFrame(members, schema={"path": pl.String, "kind": pl.String, "size": pl.Int64,
                                        "mtime_ns": pl.Int64}, orient="row")
    table = pl.concat([file_table(results), ids.select("size", "mtime_ns")], how="horizontal")
    write_parquet(table, out, {**FILE_COLUMNS, "size": pl.Int64, "mtime_ns": pl.Int64}, "predict chunk")
    write_json(record, {"members": members})
    return sum(r.p_fake is not None for r in results)


def gather(chunk_tables: list, config: dict, name: str, out) -> dict:
    """One row per file of the set as listed now (predict's ``--out`` columns), from the chunks' rows;
    a path that is not a video or image file is ``skipped``, a file listed after this run was planned
    ``not_scored`` (each with its reason). Returns counts by status."""
    import polars as pl

    from pipeline.core.tables import write_parquet
    from .output import FILE_COLUMNS

    files, problems = list_set(config["predict"][name])
    cols = list(FILE_COLUMNS)
    scored = pl.concat([pl.read_parquet(t) for t in chunk_tables]) if chunk_tables else None
    listed = pl.DataFrame(files, schema=dict(zip(IDENTITY, (pl.String, pl.String, pl.Int64, pl.Int64))),
                          orient="row").with_row_index("order")
    if scored is not None:
        rows = listed.join(scored.unique(["path", "size", "mtime_ns"], keep="first", maintain_order=True),
                           on=["path", "kind", "size", "mtime_ns"], how="left", maintain_order="left")
    else:
        rows = listed.with_columns(*(pl.lit(None).alias(c) for c in cols if c not in IDENTITY))
    rows = rows.with_columns(
        pl.col("frames_scored").fill_null(0), pl.col("frames_sampled").fill_null(0),
        pl.col("message").fill_null("listed after this run was planned: run the same command again"),
        pl.col("status").fill_null(NOT_SCORED)).select(cols)
    skipped = pl.DataFrame([{"path": p, "kind": None, "p_fake": None, "frames_scored": 0, "frames_sampled": 0,
                             "status": SKIPPED, "message": why} for p, why in problems], schema=FILE_COLUMNS)
    table = pl.concat([rows.cast(FILE_COLUMNS), skipped])
    write_parquet(table, out, FILE_COLUMNS, f"predict set {name}")
    return dict(sorted(table.group_by("status").len().iter_rows()))
