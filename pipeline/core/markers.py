"""Checksums and ``.done`` markers: what a fetch writes when it is complete, and what proves it later.

A marker is JSON with what was fetched (kind, source), the file count, the total size and a digest of
the listing (relative paths and sizes; hashing terabytes of videos is not worth it), or each file's
SHA-256 where the files are few. It holds nothing time-dependent, so fetching the same data again
writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.core.files import write_json

MARKER_FORMAT = "lnclip-df-download/1"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def listing_digest(root: Path) -> tuple[int, int, str]:
    """(file count, total bytes, digest of relative paths and sizes) of a tree."""
    h = hashlib.sha256()
    count = size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root).as_posix()}\t{st.st_size}\n".encode())
        count += 1
        size += st.st_size
    return count, size, h.hexdigest()


def write_marker(marker: str | Path, info: dict) -> dict:
    info = {"format": MARKER_FORMAT, **info}
    write_json(marker, info, sort_keys=True)
    return info


def read_marker(marker: str | Path) -> dict:
    return json.loads(Path(marker).read_text())
