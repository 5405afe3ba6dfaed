"""Backbone weights into ``resources/weights/{name}``, so compute nodes need no internet.

Kinds (``weights.<name>`` in the config): ``hub`` (a Hugging Face model id such as
``openai/clip-vit-large-patch14``, fetched once, safetensors only), ``path`` (a local directory saved
with ``save_pretrained``: air-gapped clusters), ``random`` (a tiny randomly initialised CLIP saved
with ``save_pretrained``: the demo and the tests load it through the same code path as the real
backbone). A ``.done`` marker with the files' checksums ends each fetch.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.download import DownloadError, sha256_file, write_marker

log = logging.getLogger("pipeline.weights")


def fetch_weights(name: str, entry: dict, dest: str | Path, marker: str | Path, seed: int = 0) -> dict:
    """Fetch a backbone into ``dest`` (hub, random) or check a local one (path); write the marker."""
    dest = Path(dest)
    kind, value = next(iter(entry.items()))
    if kind == "random":
        from pipeline.model import save_random_backbone

        save_random_backbone(dest, dict(value), seed=seed)
        info = {"kind": "random", "config": value, "seed": seed}
    elif kind == "hub":
        from huggingface_hub import snapshot_download

        log.info("downloading %s from the Hugging Face hub into %s", value, dest)
        snapshot_download(repo_id=value, local_dir=str(dest),
                          allow_patterns=["config.json", "*.safetensors", "preprocessor_config.json"])
        info = {"kind": "hub", "hub": value}
    elif kind == "path":
        if not (Path(value) / "config.json").is_file():
            raise DownloadError(f"weights.{name}.path: {value} holds no config.json; point it at a directory "
                                "saved with save_pretrained (a CLIP or CLIP vision model)")
        dest = Path(value)
        info = {"kind": "path", "path": str(dest.resolve())}
    else:
        raise DownloadError(f"weights.{name}: unknown kind {kind!r}")
    files = sorted(p for p in dest.rglob("*.safetensors"))
    if not files:
        raise DownloadError(f"weights.{name}: no *.safetensors under {dest} (pickled weights are not loaded)")
    info.update({"weights": name, "dir": str(dest),
                 "files": {p.relative_to(dest).as_posix(): sha256_file(p) for p in files}})
    return write_marker(marker, info)


def weights_dir(entry: dict, dest: str | Path) -> Path:
    return Path(entry["path"]) if "path" in entry else Path(dest)
