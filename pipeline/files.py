"""Writing outputs so that a crash never leaves a half-written file under its final name.

Snakemake trusts any output that exists; every stage therefore writes to ``<name>.tmp`` next to the
target and renames it onto the target only once it is complete (a rename is atomic on one
filesystem). A failure removes the temporary file and leaves any earlier output untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj, *, indent: int = 2, sort_keys: bool = False, allow_nan: bool = True) -> None:
    """JSON with a final newline; ``allow_nan=False`` refuses NaN/inf (strict JSON for other tools)."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")
