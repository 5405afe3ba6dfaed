"""Archives, verified before anything is extracted: zip or tar(.gz), whole, no ``..``/absolute paths,
links or devices, enough free space for what they unpack to."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from pipeline.core.files import tar_ends_cleanly


class DownloadError(RuntimeError):
    """A download that cannot proceed; the message says what to do."""


class CorruptArchive(DownloadError):
    """An archive that is truncated or damaged (not one that is merely refused)."""



# archives and disk space


def check_free_space(folder: str | Path, need: int, what: str) -> None:
    """Raise :class:`DownloadError` naming the need when ``folder``'s disk has less than ``need`` bytes free."""
    folder = Path(folder)
    probe = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if free < need:
        raise DownloadError(f"{what} needs {need / 1e9:.1f} GB free in {probe}, but only {free / 1e9:.1f} GB "
                            "are free; free some space (or point resources/ at a larger disk) and run again")


def archive_kind(path: Path) -> str:
    """``zip`` or ``tar`` (plain, gz, bz2, xz), by content: Kaggle names a download after its URL."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zX")) or tarfile.is_tarfile(path):
        return "tar"
    raise CorruptArchive(f"{path} is neither a zip nor a tar archive (it may be truncated or an error page)")


def _check_member(archive: Path, dest: Path, name: str, link: str | None, special: bool = False) -> None:
    target = (dest / name).resolve()
    if name.startswith(("/", "\\")) or not target.is_relative_to(dest):
        raise DownloadError(f"{archive}: member {name!r} would be written outside {dest}; "
                            "refusing to extract this archive")
    if link:
        raise DownloadError(f"{archive}: member {name!r} is a {link}; refusing to extract")
    if special:
        raise DownloadError(f"{archive}: member {name!r} is a device or fifo; refusing to extract")


def _zip_members(archive: Path, dest: Path):
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise CorruptArchive(f"{archive} is not a valid zip archive ({exc}); it is probably truncated") from exc
    members = zf.infolist()
    for m in members:
        is_link = (m.external_attr >> 16) & 0o170000 == 0o120000
        _check_member(archive, dest, m.filename, "symbolic link" if is_link else None)
    bad = zf.testzip()
    if bad is not None:
        raise CorruptArchive(f"{archive}: member {bad!r} is corrupt (CRC mismatch)")
    return zf, [m.filename for m in members], sum(m.file_size for m in members)


def _tar_members(archive: Path, dest: Path):
    try:
        tf = tarfile.open(archive, "r:*")
        members = tf.getmembers()  # reads the whole archive: a truncated one fails here...
        if not tar_ends_cleanly(tf):  # ...or, cut between two members, lacks the end marker
            raise tarfile.ReadError("no end-of-archive marker after the last member")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorruptArchive(f"{archive} is not a complete tar archive ({exc}); it is probably truncated") from exc
    for m in members:
        link = "symbolic link" if m.issym() else "hard link" if m.islnk() else None
        _check_member(archive, dest, m.name, link, m.isdev() or m.isfifo())
    return tf, [m.name for m in members if m.isfile()], sum(m.size for m in members)


def safe_extract(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract a zip or tar(.gz) into ``dest``, refusing absolute paths, ``..`` escapes and links.

    The whole archive is read and checked (zip CRCs; a tar to its end) and the free space compared
    with its unpacked size before anything is written, so a malicious, truncated or oversized
    archive leaves ``dest`` untouched. Returns the extracted member names.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    kind = archive_kind(archive)
    handle, names, size = (_zip_members if kind == "zip" else _tar_members)(archive, dest)
    with handle:
        check_free_space(dest, size, f"extracting {archive.name} ({len(names)} files)")
        if kind == "zip":
            handle.extractall(dest)
        else:
            handle.extractall(dest, filter="data")
    return names
