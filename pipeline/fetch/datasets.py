"""Datasets into ``resources/datasets/``, verified and idempotent.

Each fetch ends by writing a ``.done`` marker (JSON: what was fetched, file count, listing digest,
checksums; :mod:`pipeline.core.markers`) and, beside it, the record that lets the next fetch of the
same source verify the files instead of fetching them again (:mod:`.verify`).

Sources (``datasets.<name>.source`` in the config):

* ``demo``: synthetic videos generated offline (:mod:`.demo`);
* ``path``: a tree the user downloaded by hand (most deepfake datasets are form-gated); checked to
  exist, fingerprinted by a listing digest (names and sizes; hashing terabytes is not worth it);
* ``kaggle`` / ``kaggle_competition``: a Kaggle dataset or competition (:mod:`.kaggle`);
* ``dataset``: the files of another entry (e.g. FaceShifter read from the FF++ download).

Credentials are never printed or logged.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline.core.markers import listing_digest, read_marker, sha256_file
from . import verify
from .archives import DownloadError

log = logging.getLogger("pipeline.download")


def fetch_dataset(name: str, source: dict, dest: str | Path, marker: str | Path, seed: int = 0,
                  upstream: str | Path | None = None) -> dict:
    """Fetch one dataset per its ``source`` and write the marker; returns the marker's content.

    ``upstream``: for a ``dataset`` source (the files of another entry), that entry's marker. A demo or
    Kaggle source whose last complete fetch is still on disk as it was is not fetched again."""
    dest = Path(dest)
    kind, value = next(iter(source.items()))
    spec = {"source": source, "seed": seed if kind == "demo" else None}
    if kind in ("demo", "kaggle", "kaggle_competition") and (found := verify.present(marker, spec)):
        return found
    root = dest
    if kind == "demo":
        from .demo import make_demo_dataset

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
                f"datasets.{name}.source.path to the folder (README \"Datasets\" says where to get it and "
                f"which folder to point at).")
        info = {"kind": "path", "path": str(root.resolve())}
    elif kind in ("kaggle", "kaggle_competition"):
        from .kaggle import fetch_kaggle, finished_download

        competition = kind == "kaggle_competition"
        info = finished_download(value, dest, competition) or fetch_kaggle(value, dest, competition=competition)
    elif kind == "dataset":
        if upstream is None or not Path(upstream).is_file():
            raise DownloadError(f"datasets.{name}.source.dataset: the marker of dataset {value!r} is missing; "
                                "fetch that dataset first")
        root = Path(read_marker(upstream)["root"])
        info = {"kind": "dataset", "dataset_of": value}
    else:
        raise DownloadError(f"datasets.{name}.source: unknown kind {kind!r}")
    count, size, digest = listing_digest(root)
    if count == 0:
        raise DownloadError(f"dataset {name!r}: {root} holds no files")
    info.update({"dataset": name, "root": str(root), "file_count": count, "bytes": size,
                 "listing_sha256": digest})
    return verify.remember(marker, spec, info)
