"""The download stage: datasets and backbone weights into ``resources/``, verified and idempotent.

Each fetch ends by writing a ``.done`` marker (JSON: what was fetched, file count, checksums); the
workflow's download rules declare only that marker as output, and downstream rules take it as an
``ancient()`` input, so a re-download never invalidates finished work.

Sources (``datasets.<name>.source`` in the config):

* ``demo``: synthetic videos generated offline (``pipeline.demo``).
* ``path``: a tree the user downloaded by hand (most deepfake datasets are form-gated); checked to
  exist, fingerprinted by a listing digest (names and sizes; hashing terabytes is not worth it).
* ``kaggle`` / ``kaggle_competition``: a Kaggle dataset or competition, through the official ``kaggle``
  client (which resumes an interrupted download from its ``.kaggle-partial`` marker with ranged
  requests); the archive (zip or tar) is verified, and the free space checked, before it is
  extracted safely.
* ``dataset``: the files of another entry (e.g. FaceShifter read from the FF++ download).

Backbone weights are fetched by ``pipeline.weights``. Credentials are never printed or logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from pipeline.files import tar_ends_cleanly, write_json

log = logging.getLogger("pipeline.download")

MARKER_FORMAT = "lnclip-df-download/1"


class DownloadError(RuntimeError):
    """A download that cannot proceed; the message says what to do."""


class CorruptArchive(DownloadError):
    """An archive that is truncated or damaged (not one that is merely refused)."""


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


# Approximate archive sizes of the Kaggle sources the config names: the free-space check before a
# download asks for twice this (archive + extracted files); unknown sources are checked before
# extraction only.
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


# --------------------------------------------------------------------------------------------


def fetch_dataset(name: str, source: dict, dest: str | Path, marker: str | Path, seed: int = 0,
                  upstream: str | Path | None = None) -> dict:
    """Fetch one dataset per its ``source`` and write the marker; returns the marker's content.

    ``upstream``: for a ``dataset`` source (the files of another entry), that entry's marker."""
    dest = Path(dest)
    kind, value = next(iter(source.items()))
    root = None
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
                f"datasets.{name}.source.path to the folder (README \"Datasets\" says where to get it and "
                f"which folder to point at).")
        info = {"kind": "path", "path": str(root.resolve())}
    elif kind in ("kaggle", "kaggle_competition"):
        info = fetch_kaggle(value, dest, competition=kind == "kaggle_competition")
    elif kind == "dataset":
        if upstream is None or not Path(upstream).is_file():
            raise DownloadError(f"datasets.{name}.source.dataset: the marker of dataset {value!r} is missing; "
                                "fetch that dataset first")
        root = Path(read_marker(upstream)["root"])
        info = {"kind": "dataset", "dataset_of": value}
    else:
        raise DownloadError(f"datasets.{name}.source: unknown kind {kind!r}")
    root = root or dest  # a path source or another entry's files were set above
    count, size, digest = listing_digest(root)
    if count == 0:
        raise DownloadError(f"dataset {name!r}: {root} holds no files")
    info.update({"dataset": name, "root": str(root), "file_count": count, "bytes": size,
                 "listing_sha256": digest})
    return write_marker(marker, info)


def planning_warnings(config: dict, env=None, home: Path | None = None) -> list[str]:
    """What will fail, said while the workflow is planned (``snakemake -n`` too), before any job runs:
    :func:`missing_sources` and :func:`missing_credentials`. Never includes a credential's value."""
    return missing_sources(config) + missing_credentials(config, env=env, home=home)


# Public hub models that need no token (any other hub id may be gated or private).
PUBLIC_HUB_MODELS = frozenset({"openai/clip-vit-large-patch14", "openai/clip-vit-large-patch14-336",
                               "openai/clip-vit-base-patch16", "openai/clip-vit-base-patch32"})


def missing_credentials(config: dict, env=None, home: Path | None = None) -> list[str]:
    """One message per download still to do that lacks what it needs to log in: a Kaggle source
    without Kaggle credentials; hub weights while ``HF_HUB_OFFLINE`` is set, or without a Hugging Face
    token for a model that is not known to be public. Sources whose ``.done`` marker exists are skipped."""
    from pipeline.config import used_datasets
    from pipeline.layout import from_config

    env = os.environ if env is None else env
    L = from_config(config)
    out = []
    for ds in sorted({_source_entry(config, ds) for ds in used_datasets(config)}):
        source = config["datasets"][ds]["source"]
        kind = next((k for k in ("kaggle", "kaggle_competition") if k in source), None)
        if kind and not Path(L.dataset_marker(ds)).exists() and not kaggle_credentials_present(env, home):
            what = "competition" if kind == "kaggle_competition" else "dataset"
            out.append(f"datasets.{ds}.source.{kind}: downloading Kaggle {what} {source[kind]!r} needs Kaggle "
                       "credentials and none were found: set KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json "
                       "(kaggle.com > Settings > API) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR (chmod 600)")
    for name in _used_weights(config):
        repo = config["weights"][name].get("hub")
        if repo is None or Path(L.weights_marker(name)).exists():
            continue
        if str(env.get("HF_HUB_OFFLINE", "")).lower() in ("1", "true", "yes", "on"):
            out.append(f"weights.{name}.hub: {repo!r} is not downloaded yet and HF_HUB_OFFLINE is set: unset it "
                       f"for the download, or save the model elsewhere and use weights.{name}.path")
        elif repo not in PUBLIC_HUB_MODELS and not _hub_token_present(env):
            out.append(f"weights.{name}.hub: no Hugging Face token found; if {repo!r} is gated or private the "
                       "download will be refused: accept its licence on its hub page and set HF_TOKEN "
                       "(or run `hf auth login`)")
    return out


def _source_entry(config: dict, ds: str) -> str:
    """The entry whose own source provides ``ds``'s files (following ``source: {dataset: ...}``)."""
    while "dataset" in config["datasets"][ds]["source"]:
        ds = config["datasets"][ds]["source"]["dataset"]
    return ds


def _used_weights(config: dict) -> list[str]:
    from pipeline.config import model_config

    return sorted({model_config(config, m)["weights"] for m in config["models"]})


def _hub_token_present(env) -> bool:
    """Whether huggingface_hub will send a token (environment or ``hf auth login``); never read out."""
    if env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    from huggingface_hub import get_token

    return bool(get_token())


def missing_sources(config: dict) -> list[str]:
    """One message per enabled benchmark (or trained-on dataset) whose ``path:`` folder does not exist,
    naming the config line to change; shown when the workflow is planned."""
    from pipeline.config import model_config

    used = {b["dataset"]: f"benchmark {name!r}" for name, b in config["benchmarks"].items()}
    for model in config["models"]:
        used.setdefault(model_config(config, model)["data"]["dataset"], f"model {model!r}")
    out = []
    for ds, user in used.items():
        entry = config["datasets"].get(ds, {})
        source = entry.get("source", {})
        while "dataset" in source:
            source = config["datasets"].get(source["dataset"], {}).get("source", {})
        if "path" in source and not Path(source["path"]).is_dir():
            name = user.split("'")[1]
            line = (f"comment out the line `{name}: ...` under benchmarks" if user.startswith("benchmark")
                    else f"change models.{name}.data.dataset")
            out.append(f"{user} needs dataset {ds!r}, but its folder {source['path']} does not exist: download it "
                       f"(README, Datasets: adapter {entry.get('adapter')}) and set datasets.{ds}.source.path in "
                       f"config.yaml, or {line}")
    return out
