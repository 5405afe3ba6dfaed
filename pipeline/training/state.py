"""Resumable training state (safetensors + JSON, no pickle), saved every ``checkpoint_every`` steps
and at each epoch's end into an undeclared work directory.

A state holds the trainable tensors, the optimiser state, the best epoch's tensors, the RNG states
(global and slerp's), the position (optimiser steps done, epochs validated) and the log so far; the
loader position follows from the step (the epoch's order is a function of seed and epoch).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path

import polars as pl
import torch
from safetensors.torch import load_file, save_file

from pipeline.core.files import replacing, write_json
from .engine import RUNTIME_KEYS
from .records import LOG_SCHEMA

# a gradient-trained model's log (saved states and the final one): the common columns and the video AP
# that may select its epoch
TRAIN_LOG_SCHEMA = {**LOG_SCHEMA, "video_ap": pl.Float64}

log = logging.getLogger("pipeline.train")

STATE_FORMAT = "lnclip-df-train-state/2"


def state_hash(cfg: dict, seed: int, train: pl.DataFrame, val: pl.DataFrame) -> str:
    """Identity of a training run for resuming: config (minus ``optim.epochs``: the schedule does not
    depend on it, so a longer run may continue a shorter one; minus loader workers and the engine's
    runtime settings), seed and the train/val crops."""
    c = copy.deepcopy(cfg)
    c.get("optim", {}).pop("epochs", None)
    c.get("data", {}).pop("workers", None)
    for key in RUNTIME_KEYS:
        c.get("engine", {}).pop(key, None)
    rows = lambda df: sorted(map(list, df.select("shard", "key", "label").rows()))  # noqa: E731
    blob = json.dumps({"cfg": c, "seed": seed, "train": rows(train), "val": rows(val)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _tensors(detector, opt, best: dict, slerp_gen: torch.Generator) -> dict[str, torch.Tensor]:
    out = {f"param.{n}": p.detach().cpu().contiguous() for n, p in detector.trainable_parameters().items()}
    out.update({f"best.{n}": t for n, t in (best.get("tensors") or {}).items()})
    for idx, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{idx}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
    out["rng.torch"] = torch.get_rng_state()
    out["rng.slerp"] = slerp_gen.get_state()
    return out


def save_state(work_dir: Path, *, step: int, epochs_done: int, detector, opt, best: dict, rows: list,
               slerp_gen: torch.Generator, info: dict) -> None:
    """Save everything needed to continue after ``step`` optimiser steps and ``epochs_done`` validated
    epochs. Files are written under new names first; ``state.json`` (written last, atomically) names
    them, so a kill at any point leaves either the previous complete state or the new one."""
    work_dir.mkdir(parents=True, exist_ok=True)
    tensors_name, log_name = f"state-{step:08d}.safetensors", f"log-{step:08d}.parquet"
    # both or neither (a full disk may stop the second); the usual mode (save_file writes 0600)
    with replacing(work_dir / tensors_name) as tensors_tmp, replacing(work_dir / log_name) as log_tmp:
        save_file(_tensors(detector, opt, best, slerp_gen), str(tensors_tmp))
        pl.DataFrame(rows, schema=TRAIN_LOG_SCHEMA).write_parquet(log_tmp)
    state = {
        "format": STATE_FORMAT, **info, "step": step, "epoch": epochs_done,
        "best_epoch": best.get("epoch"), "best_metric": best.get("metric"), "best_tiebreak": best.get("tiebreak"),
        "param_groups": opt.state_dict()["param_groups"],
        "cuda_rng": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "tensors": tensors_name, "log": log_name,
    }
    try:
        write_json(work_dir / "state.json", state, indent=1)
    except OSError:  # the earlier state.json (if any) still holds: keep only the files it names
        _keep_only(work_dir, _named_files(work_dir))
        raise
    _keep_only(work_dir, (tensors_name, log_name))


def _named_files(work_dir: Path) -> tuple[str, ...]:
    try:
        state = json.loads((work_dir / "state.json").read_text())
        return state["tensors"], state["log"]
    except (OSError, ValueError, KeyError, TypeError):
        return ()


def _keep_only(work_dir: Path, names) -> None:
    """Delete the saved tensors and logs of ``work_dir`` other than ``names``."""
    for old in [*work_dir.glob("state-*.safetensors"), *work_dir.glob("log-*.parquet")]:
        if old.name not in names:
            old.unlink()


def load_state(work_dir: Path, cfg_hash: str) -> dict | None:
    """The saved state in ``work_dir`` if it is complete and belongs to ``cfg_hash``, else None."""
    path = work_dir / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if state.get("format") != STATE_FORMAT or state.get("cfg_hash") != cfg_hash:
        log.info("work dir %s holds a state of another config; starting from scratch", work_dir)
        return None
    if not (work_dir / state["tensors"]).exists() or not (work_dir / state["log"]).exists():
        return None
    state["tensor_data"] = load_file(str(work_dir / state["tensors"]))
    state["rows"] = pl.read_parquet(work_dir / state["log"]).to_dicts()
    return state


def restore_state(state: dict, detector, opt, slerp_gen: torch.Generator) -> dict:
    """Load a :func:`load_state` result into the model, optimiser and RNGs; returns the ``best`` record."""
    data = state["tensor_data"]
    with torch.no_grad():
        for n, p in detector.trainable_parameters().items():
            p.copy_(data[f"param.{n}"])
    opt_state: dict = {}
    for name, t in data.items():
        if name.startswith("opt."):
            _, idx, k = name.split(".", 2)
            opt_state.setdefault(int(idx), {})[k] = t
    groups = state["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(data["rng.torch"])
    slerp_gen.set_state(data["rng.slerp"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda_rng"]])
    best_tensors = {n[len("best."):]: t for n, t in data.items() if n.startswith("best.")}
    return {"epoch": state["best_epoch"], "metric": state["best_metric"], "tiebreak": state.get("best_tiebreak"),
            "tensors": best_tensors or None}
