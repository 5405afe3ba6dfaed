"""Writing outputs so that a crash never leaves a half-written file under its final name.

Snakemake trusts any output that exists; every stage therefore writes to ``<name>.tmp`` next to the
target and renames it onto the target only once it is complete (a rename is atomic on one
filesystem). A failure removes the temporary file and leaves any earlier output untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputError(OSError):
    """Writing an output failed (disk full, no permission): the message names the output."""


_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full: free space there (or point results/ at a larger disk)",
    errno.EDQUOT: "your disk quota is used up: free space or ask for a larger quota",
    errno.EFBIG: "the file is larger than this filesystem allows",
    errno.EROFS: "the filesystem is read-only: run from a writable working directory",
    errno.EACCES: "permission denied: make that folder writable for you",
    errno.EPERM: "permission denied: make that folder writable for you",
}


# Writers in Rust (polars, safetensors) raise their own exception types, or an OSError without errno,
# with Rust's "(os error N)" in the text and no filename.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_ONLY_FROM_WRITING = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _write_errno(path: Path, tmp: Path, exc: Exception) -> int | None:
    """The errno of ``exc`` when it is a failure to write ``path`` (through ``tmp``); None when it is
    something else (e.g. an input that could not be read inside the block)."""
    if isinstance(exc, OutputError):
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        code = exc.errno
        ours = exc.filename is None or Path(exc.filename) in (path, tmp, *path.parents)
    elif found := _RUST_OS_ERROR.search(str(exc)):
        code = int(found.group(1))
        ours = code in _ONLY_FROM_WRITING or str(tmp) in str(exc)
    else:  # polars, failing in a Parquet footer, says only "Invalid thrift: transport error"
        code, ours = errno.ENOSPC, _no_space_left(tmp)
    return code if ours and code in _WRITE_ERRORS else None


def _no_space_left(tmp: Path) -> bool:
    """Whether the filesystem ``tmp`` is on has no byte left for its writer (once it has begun writing)."""
    try:
        return tmp.stat().st_size > 0 and os.statvfs(tmp.parent).f_bavail == 0
    except OSError:
        return False


def _output_error(path: Path, code: int) -> OutputError:
    return OutputError(code, f"cannot write {path}: {_WRITE_ERRORS[code]}, then run the same command again. "
                             f"Nothing was written under that name ({os.strerror(code)})")


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The file gets the usual permissions (0644 under umask 022), whatever the writer created the
    temporary file with (safetensors writes 0600), so colleagues on a shared cluster can read it.
    A full disk, a read-only filesystem or a permission error raises :class:`OutputError` naming
    ``path``, whatever the writer raised; any earlier ``path`` is left as it was and the temporary
    file is removed. The temporary file is created (empty) before the block runs, so a folder that
    cannot be written fails here, in Python, whichever library writes the bytes.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.touch()
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except Exception as exc:
        code = _write_errno(path, tmp, exc)
        if code is None:
            raise
        raise _output_error(path, code) from exc
    finally:
        if os.path.lexists(tmp):  # unlinking a missing file on a read-only filesystem raises EROFS
            tmp.unlink()


def canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted, so equal tensors and metadata
    always give equal bytes (the library's header order varies from run to run). The data section
    is untouched: the header gives every tensor's offsets explicitly."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def tar_ends_cleanly(tar) -> bool:
    """Whether an open ``tarfile.TarFile`` whose members were all read ends with the end-of-archive
    zero block. A tar cut short exactly between two members reads without error, as if complete:
    only the missing marker tells."""
    tar.fileobj.seek(tar.offset)
    return tar.fileobj.read(512) == bytes(512)


def write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj, *, indent: int = 2, sort_keys: bool = False, allow_nan: bool = True) -> None:
    """JSON with a final newline; ``allow_nan=False`` refuses NaN/inf (strict JSON for other tools)."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")
