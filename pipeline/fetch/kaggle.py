"""Kaggle datasets and competitions through the official ``kaggle`` client: an interrupted download
resumes (the client's ``.kaggle-partial`` marker and ranged requests), the archive is verified and the
free space checked before it is extracted safely."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.markers import sha256_file
from .archives import CorruptArchive, DownloadError, check_free_space, safe_extract
from .credentials import kaggle_credentials_present

log = logging.getLogger("pipeline.download")

KNOWN_SIZES_GB = {"xdxd003/ff-c23": 17}
HTTP_HINTS = {401: "check your Kaggle credentials",
              403: "accept the terms (dataset page) or the rules (competition page) on Kaggle and check your "
                   "credentials",
              404: "check the name in the config (owner/slug for a dataset, the competition's name)"}


def kaggle_api():
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    return api


def _kaggle_call(what: str, name: str, call) -> None:
    """Run a client download, turning its errors into messages that say what to do."""
    import requests

    try:
        call()
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise DownloadError(f"Kaggle {what} {name!r}: download refused with HTTP {status} ({exc}); "
                            f"{HTTP_HINTS.get(status, 'try again later')}") from exc
    except (requests.ConnectionError, requests.Timeout, ValueError, OSError) as exc:
        raise DownloadError(f"Kaggle {what} {name!r}: the download was interrupted ({type(exc).__name__}: {exc}). "
                            "The partial archive is kept: run the workflow again to resume it") from exc


def fetch_kaggle(slug: str, dest: Path, api=None, competition: bool = False) -> dict:
    """Download a Kaggle dataset (``owner/slug``) or competition's files into ``dest``, resuming an
    interrupted download, and extract the verified archive safely."""
    what = "competition" if competition else "dataset"
    if api is None:
        if not kaggle_credentials_present():
            raise DownloadError(
                f"Kaggle {what} {slug!r} needs Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or put "
                "kaggle.json (from kaggle.com > Settings > API) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR (chmod 600). "
                f"Accept the {what}'s {'rules' if competition else 'terms'} on its Kaggle page first.")
        api = kaggle_api()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if slug in KNOWN_SIZES_GB:
        check_free_space(dest, int(2 * KNOWN_SIZES_GB[slug] * 1e9), f"Kaggle {what} {slug!r} (archive + files)")
    log.info("downloading kaggle %s %s into %s (an interrupted download resumes)", what, slug, dest)
    before = {p.name for p in dest.iterdir()}
    if competition:
        _kaggle_call(what, slug, lambda: api.competition_download_files(slug, path=str(dest), quiet=False))
    else:
        _kaggle_call(what, slug, lambda: api.dataset_download_files(slug, path=str(dest), unzip=False, quiet=False))
    stem = slug if competition else slug.split("/")[1]
    archives = sorted(p for p in dest.glob(f"{stem}.*") if not p.name.endswith(".kaggle-partial"))
    if not archives:
        raise DownloadError(f"Kaggle {what} {slug!r}: expected the archive {dest}/{stem}.zip after the download "
                            f"(found: {sorted(set(p.name for p in dest.iterdir()) - before)})")
    archive = archives[0]
    digest = sha256_file(archive)
    try:
        members = safe_extract(archive, dest)
    except CorruptArchive as exc:
        archive.unlink()  # else the client would find it "up to date" and never fetch it again
        raise CorruptArchive(f"Kaggle {what} {slug!r}: {exc}. The archive was deleted: run the workflow again "
                             "to download it again") from exc
    archive.unlink()  # the extracted tree is what the index reads; keep the disk for the videos
    return {"kind": "kaggle_competition" if competition else "kaggle", "kaggle": slug, "archive_sha256": digest,
            "members": len(members)}


def finished_download(slug: str, dest: Path, competition: bool = False) -> dict | None:
    """The marker content of a download that an earlier version of the workflow completed (its tree
    extracted, its archive deleted, nothing partial left) but recorded no fetch for; None otherwise.

    So that upgrading does not fetch tens of gigabytes again: the archive is deleted only after the
    whole of it was verified and extracted."""
    dest = Path(dest)
    stem = slug if competition else slug.split("/")[1]
    if not dest.is_dir() or any(dest.glob(f"{stem}.*")) or any(dest.rglob("*.kaggle-partial")):
        return None
    if not any(p.is_file() for p in dest.rglob("*")):
        return None
    log.info("%s: Kaggle %s %r was extracted here by an earlier run; not fetched again", dest,
             "competition" if competition else "dataset", slug)
    return {"kind": "kaggle_competition" if competition else "kaggle", "kaggle": slug, "archive_sha256": None,
            "members": None}
