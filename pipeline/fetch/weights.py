"""Backbone weights into ``resources/weights/{name}``, so compute nodes need no internet.

Kinds (``weights.<name>`` in the config): ``hub`` (a Hugging Face model id such as
``openai/clip-vit-large-patch14``, fetched once, safetensors only), ``path`` (a local directory saved
with ``save_pretrained``: air-gapped clusters), ``random`` (a tiny randomly initialised CLIP, or
DINOv3 ViT with ``model_type: dinov3_vit``, saved with ``save_pretrained``: the demo and the tests load it through the same code path as the real
backbone). A hub or path entry with ``files`` takes those files instead of ``config.json`` and the
safetensors: published checkpoints in other layouts, such as the LNCLIP-DF release's ``model.ckpt``
(read as data only by the ``released`` kind). A ``.done`` marker with the files' checksums ends each fetch.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pipeline.core.config import weights_source
from pipeline.core.markers import sha256_file
from . import verify
from .archives import DownloadError

log = logging.getLogger("pipeline.weights")


def fetch_weights(name: str, entry: dict, dest: str | Path, marker: str | Path, seed: int = 0) -> dict:
    """Fetch a backbone into ``dest`` (hub, random) or check a local one (path); write the marker.

    Hub or random weights whose last complete fetch is still on disk as it was are not fetched again.
    ``seed`` initialises random weights (the entry's own ``seed``, if it has one, is not a config field)."""
    dest = Path(dest)
    kind, value = weights_source(entry)
    listed = entry.get("files")
    spec = {"entry": entry, "seed": seed if kind == "random" else None}
    if kind in ("hub", "random") and (found := verify.present(marker, spec)):
        return found
    if kind == "random":
        from pipeline.model import save_random_backbone

        settings = {k: v for k, v in value.items() if k != "seed"}
        save_random_backbone(dest, settings, seed=seed)
        info = {"kind": "random", "config": value, "seed": seed}
    elif kind == "hub":
        from huggingface_hub import snapshot_download

        log.info("downloading %s from the Hugging Face hub into %s", value, dest)
        try:
            snapshot_download(repo_id=value, local_dir=str(dest),
                              allow_patterns=listed or ["config.json", "*.safetensors", "preprocessor_config.json"])
        except Exception as err:
            hint = _hub_error_hint(name, value, err)
            if hint is None:
                raise
            raise DownloadError(hint) from err
        info = {"kind": "hub", "hub": value}
    elif kind == "path":
        if not listed and not (Path(value) / "config.json").is_file():
            raise DownloadError(f"weights.{name}.path: {value} holds no config.json; point it at a directory "
                                "saved with save_pretrained (a CLIP, CLIP vision or DINOv3 ViT model)")
        dest = Path(value)
        info = {"kind": "path", "path": str(dest.resolve())}
    else:
        raise DownloadError(f"weights.{name}: unknown kind {kind!r}")
    files = _listed_files(name, dest, listed) if listed else sorted(dest.rglob("*.safetensors"))
    if not files:
        raise DownloadError(f"weights.{name}: no *.safetensors under {dest} (pickled weights are not loaded as a "
                            "backbone; for a published checkpoint in another layout list it, e.g. files: [model.ckpt])")
    info.update({"weights": name, "dir": str(dest),
                 "files": {p.relative_to(dest).as_posix(): sha256_file(p) for p in files}})
    return verify.remember(marker, spec, info)


def _listed_files(name: str, dest: Path, listed: list[str]) -> list[Path]:
    """The files a weights entry lists, each of which must be there."""
    absent = [f for f in listed if not (dest / f).is_file()]
    if absent:
        found = sorted(p.name for p in dest.iterdir() if p.is_file()) if dest.is_dir() else "no folder"
        raise DownloadError(f"weights.{name}.files: {', '.join(absent)} not found in {dest} (found: {found})")
    return [dest / f for f in listed]


def _hub_error_hint(name: str, repo_id: str, err: Exception) -> str | None:
    """What to do about a failed hub download, naming the repo; None for errors that are not the hub's.

    Built from the repo id, the endpoint and the HTTP status only (never from request headers), so a
    token can never end up in the message.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    endpoint = re.sub(r"//[^/@]*@", "//", constants.ENDPOINT)  # drop any user:password@
    page = f"{endpoint}/{repo_id}"
    cause = err if getattr(err, "response", None) is not None else err.__cause__
    response = getattr(cause, "response", None)
    status = f"HTTP {response.status_code}" if response is not None else type(cause or err).__name__
    where = f"weights.{name}: the Hugging Face hub"
    if isinstance(err, GatedRepoError):
        return (f"{where} refused access to the gated model {repo_id!r} ({status}): accept the model's "
                f"licence on its hub page {page} while logged in, then give this machine a token that can "
                "read it (set HF_TOKEN or run `hf auth login`)")
    if isinstance(err, RepositoryNotFoundError):
        return (f"{where} has no model {repo_id!r} that this machine may read ({status}): check the id "
                f"(weights.{name}.hub in the config); if the model is gated or private, accept its licence "
                f"on its hub page {page} and set HF_TOKEN (or run `hf auth login`)")
    if isinstance(err, RevisionNotFoundError):
        return f"{where}: {repo_id!r} has no such revision ({status}); check weights.{name}.hub"
    if isinstance(err, (HfHubHTTPError, LocalEntryNotFoundError)):
        return (f"{where} at {endpoint} did not serve {repo_id!r} ({status}; offline mode: "
                f"{constants.HF_HUB_OFFLINE}): run the download stage where the hub is reachable (check the "
                "network, HF_ENDPOINT, and HF_HUB_OFFLINE unset or 0), or download the model elsewhere and use "
                f"weights.{name}.path")
    return None
