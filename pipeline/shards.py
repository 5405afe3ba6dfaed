"""Reading WebDataset shards as untrusted files: every member is checked before a crop is used.

A shard holds only regular files named ``<key>.qoi`` or ``<key>.png`` (the crop, :mod:`pipeline.codec`)
and ``<key>.json`` (keys as
:func:`pipeline.tables.sample_key` makes them) and ends with the tar end-of-archive marker. A member
with another name or extension, a link, a device or a fifo, and a shard cut short (inside a member,
or between members, where a tar reader would silently stop early) are refused with
:class:`ShardError` naming the shard, so a damaged or planted file is never half-read.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from .codec import CODECS
from .files import tar_ends_cleanly

MEMBER = re.compile(r"[A-Za-z0-9_\-]+\.(%s|json)" % "|".join(CODECS))
REBUILD = "delete it and its .parquet and run the workflow again to rebuild it"


class ShardError(ValueError):
    """A shard that is damaged or holds something a shard never holds."""


def _kind(m: tarfile.TarInfo) -> str | None:
    if m.issym():
        return "a symbolic link"
    if m.islnk():
        return "a hard link"
    if m.isdev() or m.isfifo():
        return "a device or fifo"
    if not m.isfile():
        return "not a regular file"
    return None


def check_member(shard, m: tarfile.TarInfo) -> None:
    """Raise :class:`ShardError` unless ``m`` is a regular file named ``<key>.{qoi,png,json}``."""
    kind = _kind(m)
    if kind:
        raise ShardError(f"shard {shard}: member {m.name!r} is {kind}; a shard holds only crops and their "
                         f"JSON. Refusing to read it: {REBUILD}")
    if not MEMBER.fullmatch(m.name):
        raise ShardError(f"shard {shard}: unexpected member {m.name!r} (a shard holds only <key>.qoi or "
                         f"<key>.png crops and <key>.json). Refusing to read it: {REBUILD}")


def _truncated(shard, why: str) -> ShardError:
    return ShardError(f"shard {shard} is truncated ({why}): it was cut short (a full disk, a killed copy?); "
                      f"{REBUILD}")


def index_members(shard) -> dict[str, tuple[int, int]]:
    """``{member name: (data offset, size)}`` of a checked, complete shard (see the module's doc)."""
    size = Path(shard).stat().st_size
    members: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for m in tar:
                check_member(shard, m)
                if m.offset_data + m.size > size:
                    raise _truncated(shard, f"member {m.name!r} ends past the end of the file")
                members[m.name] = (m.offset_data, m.size)
            if not tar_ends_cleanly(tar):
                raise _truncated(shard, "no end-of-archive marker after its last member")
    except tarfile.ReadError as exc:
        raise _truncated(shard, str(exc)) from None
    return members


def check_shards(shards) -> None:
    """Check every shard (names, kinds, completeness) before any of them is streamed."""
    for shard in shards:
        index_members(shard)
