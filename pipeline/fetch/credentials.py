"""Whether the clients will find credentials, without reading or printing them (stdlib only: the
planner asks before any job runs)."""

from __future__ import annotations

import os
from pathlib import Path


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


def hub_token_present(env=None, home: Path | None = None) -> bool:
    """Whether huggingface_hub will send a token: ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``) or the
    file ``hf auth login`` writes (``$HF_TOKEN_PATH``, else ``$HF_HOME/token``); never read out."""
    env = os.environ if env is None else env
    if env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    home = Path(home or Path.home())
    hf_home = Path(env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface")
    token = Path(env.get("HF_TOKEN_PATH") or hf_home / "token")
    return token.is_file() and token.stat().st_size > 0
