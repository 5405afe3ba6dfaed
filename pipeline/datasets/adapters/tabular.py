"""``csv``: any list of videos with labels, with a column mapping for lists in other shapes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from pipeline.datasets.adapters.base import FAKE, REAL, DatasetLayoutError, register, row

FIELDS = ("video_id", "path", "label", "method", "source_id", "split")
DEFAULT_LABELS = {"0": REAL, "1": FAKE, "real": REAL, "fake": FAKE}


def parse_label(value: str, mapping: dict, where: str) -> int:
    key = str(value).strip()
    for table in (mapping, DEFAULT_LABELS):
        for k, v in table.items():
            if str(k).lower() == key.lower():
                return int(v)
    known = sorted({str(k) for k in mapping} | {"0", "1", "REAL", "FAKE"})
    raise DatasetLayoutError(f"{where}: label must be 0 (real) or 1 (fake), got {value!r} "
                             f"(accepted: {', '.join(known)}; map others with options.labels)")


def read_table(path: Path, columns: dict, required=("path", "label")) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV renamed to our field names through ``columns`` (ours -> theirs)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        names = {f: columns.get(f, f) for f in FIELDS}
        missing = [f"{names[f]!r}" + (f" (for {f})" if names[f] != f else "")
                   for f in required if names[f] not in (reader.fieldnames or ())]
        if missing:
            raise DatasetLayoutError(f"{path} lacks columns {', '.join(missing)}; it has "
                                     f"{reader.fieldnames}. Map its columns with options.columns, e.g. "
                                     "{path: filename, label: label}")
        for line, r in enumerate(reader, start=2):
            yield line, {f: r.get(col) for f, col in names.items() if r.get(col) not in (None, "")}


@register("csv")
def adapter_csv(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """A CSV list: ``video_id,path,label,method,source_id,split`` (path relative to the root)."""
    path = root / options.get("file", "labels.csv")
    if not path.is_file():
        raise DatasetLayoutError(f"dataset {dataset!r}: expected a label file {path} with columns "
                                 "video_id,path,label,method,source_id,split (or set options.file and "
                                 "options.columns)")
    columns, labels = options.get("columns", {}), options.get("labels", {})
    folder = root / options.get("folder", "")
    for line, r in read_table(path, columns):
        label = parse_label(r["label"], labels, f"dataset {dataset!r}: {path} line {line}")
        video_id = r.get("video_id") or Path(r["path"]).with_suffix("").as_posix()
        yield row(video_id, folder / r["path"], label, r.get("method"), r.get("source_id"),
                  r.get("split") or options.get("split", "test"))
