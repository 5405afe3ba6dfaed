"""What ``predict`` shows and writes: a console table, and ``--out`` / ``--frames-out`` as CSV or JSON."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.core.files import replacing, write_json
from .files import FileResult

FILE_COLUMNS = {"path": pl.String, "kind": pl.String, "p_fake": pl.Float64, "frames_scored": pl.Int64,
                "frames_sampled": pl.Int64, "status": pl.String, "message": pl.String}
FRAME_COLUMNS = {"path": pl.String, "frame_idx": pl.Int64, "status": pl.String, "p_fake": pl.Float64}


def file_table(results: list[FileResult]) -> pl.DataFrame:
    """One row per input file (:data:`FILE_COLUMNS`); ``p_fake`` null where nothing was scored."""
    return pl.DataFrame([r.row() for r in results], schema=FILE_COLUMNS, orient="row")


def frame_table(results: list[FileResult]) -> pl.DataFrame:
    """One row per sampled frame (:data:`FRAME_COLUMNS`); ``frame_idx`` null for a file that could not be
    read, ``p_fake`` null for a frame without a face crop (its ``status`` says why)."""
    rows = [{"path": r.path, **f} for r in results for f in r.frames]
    return pl.DataFrame(rows, schema=FRAME_COLUMNS, orient="row")


def write_table(df: pl.DataFrame, out: str | Path) -> Path:
    """``out`` as CSV (``.csv``) or a JSON list of row objects (``.json``); missing values empty / null."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"{out}: write a .csv or a .json file")
    if suffix == ".csv":
        with replacing(out) as tmp:
            df.write_csv(tmp)
    else:
        write_json(out, df.to_dicts(), allow_nan=False)
    return out


def console_table(results: list[FileResult]) -> str:
    """The table printed on the console: p(fake), frames scored / sampled, and a note per file."""
    rows = [("p_fake", "frames", "file", "note")]
    for r in results:
        p = "-" if r.p_fake is None else f"{r.p_fake:.4f}"
        rows.append((p, f"{r.frames_scored}/{r.frames_sampled}", r.path, r.message))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)
