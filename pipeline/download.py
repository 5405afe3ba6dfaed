"""The download stage: datasets and backbone weights into ``resources/``, verified and idempotent.

Each fetch ends by writing a ``.done`` marker (JSON: what was fetched, file count, checksums); the
workflow's download rules declare only that marker as output, and downstream rules take it as an
``ancient()`` input, so a re-download never invalidates finished work.

Sources (``datasets.<name>.source`` in the config):

* ``demo``: synthetic videos generated offline (``pipeline.demo``).
* ``path``: a tree the user downloaded by hand (most deepfake datasets are form-gated); checked to
  exist, fingerprinted by a listing digest (names and sizes; hashing terabytes is not worth it).
* ``kaggle``: a Kaggle dataset, through the official ``kaggle`` client, extracted safely.

Backbone weights are fetched by ``pipeline.weights``. Credentials are never printed or logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from pipeline.files import write_json

log = logging.getLogger("pipeline.download")

MARKER_FORMAT = "lnclip-df-download/1"


class DownloadError(RuntimeError):
    """A download that cannot proceed; the message says what to do."""


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


# --------------------------------------------------------------------------------------------
# archives


def safe_extract(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract a zip into ``dest``, refusing absolute paths, ``..`` escapes and symlinks.

    Everything is checked before anything is written, so a malicious or malformed archive leaves
    ``dest`` untouched. Returns the extracted member names.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a valid zip archive ({exc}); delete it and run again") from exc
    with zf:
        members = zf.infolist()
        for m in members:
            target = (dest / m.filename).resolve()
            if m.filename.startswith(("/", "\\")) or not target.is_relative_to(dest):
                raise DownloadError(f"{archive}: member {m.filename!r} would be written outside {dest}; "
                                    "refusing to extract this archive")
            if (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise DownloadError(f"{archive}: member {m.filename!r} is a symbolic link; refusing to extract")
        bad = zf.testzip()
        if bad is not None:
            raise DownloadError(f"{archive}: member {bad!r} is corrupt (CRC mismatch); delete the archive "
                                "and download it again")
        zf.extractall(dest)
    return [m.filename for m in members]


# --------------------------------------------------------------------------------------------
# Kaggle


def kaggle_credentials_present(env=None, home: Path | None = None) -> bool:
    """Whether the kaggle client will find credentials (without reading or printing them)."""
    env = os.environ if env is None else env
    home = Path(home or Path.home())
    if env.get("KAGGLE_API_TOKEN") or (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")):
        return True
    dirs = []
    if env.get("KAGGLE_CONFIG_DIR"):
        dirs.append(Path(env["KAGGLE_CONFIG_DIR"]))
    dirs += [home / ".kaggle", Path(env.get("XDG_CONFIG_HOME", home / ".config")) / "kaggle"]
    if (home / ".kaggle" / "access_token").is_file():
        return True
    return any((d / "kaggle.json").is_file() for d in dirs)


def fetch_kaggle(slug: str, dest: Path, api=None) -> dict:
    """Download a Kaggle dataset archive into ``dest`` and extract it safely."""
    if api is None:
        if not kaggle_credentials_present():
            raise DownloadError(
                f"Kaggle dataset {slug!r} needs Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or put "
                "kaggle.json (from kaggle.com > Settings > API) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR (chmod 600). "
                "Accept the dataset's terms on its Kaggle page first.")
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
    dest.mkdir(parents=True, exist_ok=True)
    log.info("downloading kaggle dataset %s into %s", slug, dest)
    try:
        api.dataset_download_files(slug, path=str(dest), unzip=False, quiet=False)
    except Exception as exc:  # the client raises requests.HTTPError, or its own errors
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status is None:
            raise
        hint = {401: "check your Kaggle credentials",
                403: "accept the dataset's terms on its Kaggle page and check your credentials",
                404: "check the dataset slug (owner/slug) in the config"}.get(status, "try again later")
        raise DownloadError(f"Kaggle dataset {slug!r}: download refused with HTTP {status} ({exc}); "
                            f"{hint}") from exc
    archive = dest / f"{slug.split('/')[1]}.zip"
    if not archive.is_file():
        raise DownloadError(f"Kaggle dataset {slug!r}: expected the archive {archive} after the download")
    digest = sha256_file(archive)
    members = safe_extract(archive, dest)
    archive.unlink()  # the extracted tree is what the index reads; keep the disk for the videos
    return {"kind": "kaggle", "kaggle": slug, "archive_sha256": digest, "members": len(members)}


# --------------------------------------------------------------------------------------------


def fetch_dataset(name: str, source: dict, dest: str | Path, marker: str | Path, seed: int = 0) -> dict:
    """Fetch one dataset per its ``source`` and write the marker; returns the marker's content."""
    dest = Path(dest)
    kind, value = next(iter(source.items()))
    if kind == "demo":
        from pipeline.demo import make_demo_dataset

        if dest.exists():
            shutil.rmtree(dest)  # regenerate from scratch: the parameters may have changed
        make_demo_dataset(dest, seed=seed, **value)
        info = {"kind": "demo", "params": value, "seed": seed}
        info["files"] = {p.relative_to(dest).as_posix(): sha256_file(p)
                         for p in sorted(dest.rglob("*")) if p.is_file()}
    elif kind == "path":
        root = Path(value)
        if not root.is_dir():
            raise DownloadError(
                f"datasets.{name}.source.path: {root} does not exist. This dataset is not downloaded "
                f"automatically: request access from its authors, download it, and set "
                f"datasets.{name}.source.path to the folder (see DATA.md for the layout its adapter expects).")
        info = {"kind": "path", "path": str(root.resolve())}
    elif kind == "kaggle":
        info = fetch_kaggle(value, dest)
    else:
        raise DownloadError(f"datasets.{name}.source: unknown kind {kind!r}")
    root = Path(source["path"]) if kind == "path" else dest
    count, size, digest = listing_digest(root)
    if count == 0:
        raise DownloadError(f"dataset {name!r}: {root} holds no files")
    info.update({"dataset": name, "root": str(root), "file_count": count, "bytes": size,
                 "listing_sha256": digest})
    return write_marker(marker, info)
