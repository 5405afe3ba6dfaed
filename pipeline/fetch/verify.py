"""The record of a complete fetch, so that fetching the same source again verifies instead of fetching.

Snakemake deletes a job's declared output (the ``.done`` marker) before it runs the job again, for
whatever reason it does. Beside the marker each fetch therefore keeps a record
(:func:`pipeline.core.layout.fetch_record`): what it was asked for (``spec``) and the marker it wrote.
A fetch of the same spec whose files are still there, with the recorded file count and listing digest
(and the recorded checksums, where the marker has them), writes the same marker again and touches no
network; anything else fetches again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.core import layout
from pipeline.core.files import write_json
from pipeline.core.markers import listing_digest, sha256_file, write_marker

log = logging.getLogger("pipeline.download")


def present(marker: str | Path, spec: dict) -> dict | None:
    """The recorded marker when the last complete fetch of ``spec`` is still on disk as it was, else None."""
    try:
        record = json.loads(Path(layout.fetch_record(str(marker))).read_text())
    except (OSError, ValueError):
        return None
    info = record.get("marker") or {}
    if record.get("spec") != spec or not matches(info):
        return None
    log.info("%s: the files of the last fetch are present and unchanged; nothing to fetch", marker)
    return write_marker(marker, info)


def matches(info: dict) -> bool:
    """Whether the tree a marker describes is on disk as the marker says."""
    root = Path(info.get("root") or info.get("dir") or "")
    if not root.is_dir():
        return False
    if "file_count" in info:
        count, _, digest = listing_digest(root)
        if (count, digest) != (info["file_count"], info["listing_sha256"]):
            return False
    files = info.get("files") or {}
    return all((root / name).is_file() and sha256_file(root / name) == sha for name, sha in files.items())


def remember(marker: str | Path, spec: dict, info: dict) -> dict:
    """Write the marker and, beside it, the record of this complete fetch; returns the marker's content."""
    info = write_marker(marker, info)
    write_json(layout.fetch_record(str(marker)), {"spec": spec, "marker": info}, sort_keys=True)
    return info
