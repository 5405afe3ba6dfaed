"""What will fail, said while the workflow is planned (``snakemake -n`` too), before any job runs: an
enabled benchmark whose folder is missing, a download still to do without the credentials it needs.
Never includes a credential's value."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.core.config import model_config, model_runs, runs, used_datasets
from pipeline.core.layout import from_config
from pipeline.fetch import hub_token_present, kaggle_credentials_present


def planning_warnings(config: dict, env=None, home: Path | None = None) -> list[str]:
    """:func:`missing_sources` and :func:`missing_credentials`."""
    return missing_sources(config) + missing_credentials(config, env=env, home=home)


# Public hub models that need no token (any other hub id may be gated or private).
PUBLIC_HUB_MODELS = frozenset({"openai/clip-vit-large-patch14", "openai/clip-vit-large-patch14-336",
                               "openai/clip-vit-base-patch16", "openai/clip-vit-base-patch32"})


def missing_credentials(config: dict, env=None, home: Path | None = None) -> list[str]:
    """One message per download still to do that lacks what it needs to log in: a Kaggle source
    without Kaggle credentials; hub weights while ``HF_HUB_OFFLINE`` is set, or without a Hugging Face
    token for a model that is not known to be public. Sources whose ``.done`` marker exists are skipped."""
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
        elif repo not in PUBLIC_HUB_MODELS and not hub_token_present(env, home):
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
    return sorted({model_config(config, m)["weights"] for m in runs(config)})


def missing_sources(config: dict) -> list[str]:
    """One message per enabled benchmark (or trained-on dataset) whose ``path:`` folder does not exist,
    naming the config line to change; shown when the workflow is planned."""
    used = {b["dataset"]: f"benchmark {name!r}" for name, b in config["benchmarks"].items()}
    for model in config["models"]:
        used.setdefault(model_config(config, model_runs(config, model)[0])["data"]["dataset"], f"model {model!r}")
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
