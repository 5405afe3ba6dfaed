"""WebDataset shards: the one writer (:class:`ShardWriter`), and reading them as untrusted files: every
member is checked before a crop is used.

A shard holds only regular files named ``<key>.qoi`` or ``<key>.png`` (the crop, :mod:`pipeline.core.codec`)
and ``<key>.json`` (keys as
:func:`pipeline.core.tables.sample_key` makes them) and ends with the tar end-of-archive marker. A member
with another name or extension, a link, a device or a fifo, and a shard cut short (inside a member,
or between members, where a tar reader would silently stop early) are refused with
:class:`ShardError` naming the shard, so a damaged or planted file is never half-read.
"""

from __future__ import annotations

import contextlib
import json
import re
import tarfile
from pathlib import Path

from .codec import CODECS, extension
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


class ShardWriter:
    """The crops and records of one shard being written (see :func:`write_shard`)."""

    def __init__(self, tar):
        self._tar = tar
        self.records: list[dict] = []
        self.crops = 0

    def add(self, record: dict, crop: bytes | None = None, meta: dict | None = None) -> None:
        """One sampled frame: its FRAMES ``record``, its crop (None when it has none) and the crop's JSON."""
        if crop is not None:
            self._tar.write({"__key__": record["key"], extension(crop): crop, "json": json.dumps(meta).encode()})
            self.crops += 1
        self.records.append(record)


@contextlib.contextmanager
def write_shard(tar_path, table_path):
    """The one writer of the shard format, for every stage that stores crops (faces, imported crops)::

        with write_shard(tar_path, table_path) as shard:
            shard.add(record, crop, meta)   # every sampled frame

    The tar holds ``<key>.qoi``/``<key>.png`` (the crop as given) and ``<key>.json`` per crop, written with
    ``mtime=0`` (byte-reproducible); the table holds every record (``tables.FRAMES``, ``shard`` =
    ``tar_path``). Both are written under temporary names and renamed only once both are complete, so a
    job that fails or is killed leaves neither half-written."""
    import webdataset as wds

    from . import tables
    from .files import replacing

    with replacing(tar_path) as tmp, open(tmp, "wb") as fh:
        shard = ShardWriter(wds.TarWriter(fh, mtime=0, encoder=False))
        try:
            yield shard
        finally:
            shard._tar.close()
        tables.write_parquet(frames_table(shard.records, tar_path), table_path, tables.FRAMES, "frames")


def frames_table(records: list[dict], tar_path):
    """The shard's table: one FRAMES row per record, ``shard`` the tar's path."""
    import polars as pl

    from . import tables

    cols = [c for c in tables.FRAMES if c != "shard"]
    if not records:
        return tables.empty(tables.FRAMES)
    return pl.DataFrame({c: [r.get(c) for r in records] for c in cols},
                        schema={c: tables.FRAMES[c] for c in cols}
                        ).with_columns(pl.lit(str(tar_path), dtype=pl.String).alias("shard"))
