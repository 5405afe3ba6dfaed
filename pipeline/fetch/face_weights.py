"""face-alignment's weight files (its detector and 2D-FAN) into ``resources/weights/face_alignment``.

They are not on PyPI: face-alignment downloads them at run time. The ``download_face_weights`` rule
fetches them once on the login node, so the faces jobs (whose ``TORCH_HOME`` points there) never
reach the internet.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.core.files import replacing
from pipeline.core.markers import sha256_file, write_marker
from pipeline.faces import checkpoints_dir, weight_urls

log = logging.getLogger("pipeline.faces")


def fetch_face_weights(dest: str | os.PathLike, detector: str = "sfd", marker=None, mirror: str | None = None) -> dict:
    """Download the weight files (skipping those present) into ``dest/hub/checkpoints``, from the package's
    URLs or from ``mirror`` (a base URL holding them by file name); write the marker."""
    from torch.hub import download_url_to_file

    ckpt = checkpoints_dir(dest)
    ckpt.mkdir(parents=True, exist_ok=True)
    for name, url in weight_urls(detector, mirror).items():
        if not (ckpt / name).is_file():
            log.info("downloading %s into %s", url, ckpt)
            with replacing(ckpt / name) as tmp:  # torch writes 0600; outputs get the usual mode
                download_url_to_file(url, str(tmp), progress=False)
    info = {"kind": "face_alignment", "detector": detector, "dir": str(Path(dest)),
            "files": {n: sha256_file(ckpt / n) for n in weight_urls(detector)}}
    return write_marker(marker, info) if marker else info
