"""The ``selection`` rule: proof, on the videos themselves, that a model's validation videos are neither
its training videos nor any benchmark's test videos.

The config check (:func:`pipeline.core.config.check_config`) compares names; two dataset entries can
still list the same files (``source: {dataset: other}``, a copy, a folder of another dataset's videos).
Here each video is known by three identities, and any one shared is an overlap:

* its dataset's root (``pipeline.core.layout.dataset_root``: an entry reading another entry's files has
  that entry's root) and its video id;
* the file it resolves to (links followed);
* its content fingerprint from the index (size and a digest of its first and last MiB).

The job writes ``selection.json`` beside the adapter (the validation sets with their videos, the sets
checked against, the identities compared) or fails naming the model, the validation set, the benchmark
(or the training split), how many videos they share and a few of them. Planning (the rule's params and
the config check) uses only the standard library and polars.
"""

from __future__ import annotations

import os

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.core.config import ConfigError, canonical
from .choice import val_set_specs

FILE = "selection.json"  # beside the model's adapter
IDENTITIES = ("dataset root + video id", "resolved file", "content fingerprint (size, first and last MiB)")
EXAMPLES = 5  # video ids named in a refusal


class SelectionError(ValueError):
    """Validation videos that are training or test videos, or a validation set without videos."""


def path(L: layout.Layout, model: str) -> str:
    """Where a model's selection record is written (``model`` may be a wildcard)."""
    return f"{L.model_dir(model)}/{FILE}"


def selected(config: dict) -> list[str]:
    """The runs (a model, or each seed of a model with ``seeds``) whose checkpoint is chosen on validation
    sets: the gradient-trained ones."""
    return [r for r in pconfig.runs(config) if pconfig.model_config(config, r)["kind"] == "train"]


def check_config(config: dict) -> None:
    """What the schema cannot say about selection settings; raises :class:`ConfigError` naming the key."""
    for name in config["models"]:
        cfg = pconfig.model_settings(config, name)
        if cfg["select_metric"] == "last" and cfg.get("select_tiebreak"):
            raise ConfigError(f"models.{name}.select_tiebreak is set but select_metric is 'last': nothing to "
                              "break; remove select_tiebreak or select on a metric")
        if cfg["kind"] != "train" and any(v.get("max_videos") for v in cfg["data"].get("val_sets") or []):
            raise ConfigError(f"models.{name}.data.val_sets: max_videos applies to gradient-trained models only "
                              f"(kind {cfg['kind']!r} validates on whole splits); remove it")


def spec(config: dict, model: str) -> dict:
    """What the check of ``model`` depends on (the rule's params): its validation sets, its training
    split and every benchmark, each with its dataset's root."""
    cfg = pconfig.model_config(config, model)
    d = cfg["data"]

    def where(ds: str, split: str) -> dict:
        return {"dataset": ds, "split": split, "root": layout.dataset_root(config, ds)}

    return canonical({
        "model": model,
        "val_sets": [{**v, **where(v["dataset"], v["split"])} for v in val_set_specs(cfg)],
        "train": where(d["dataset"], d["train_split"]),
        "benchmarks": {b: where(e["dataset"], e["split"]) for b, e in config["benchmarks"].items()},
    })


def splits_read(spec: dict) -> dict[str, list[str]]:
    """Dataset -> the splits of its index that the check reads."""
    sets = [*spec["val_sets"], spec["train"], *spec["benchmarks"].values()]
    out: dict[str, set[str]] = {}
    for s in sets:
        out.setdefault(s["dataset"], set()).add(s["split"])
    return {ds: sorted(splits) for ds, splits in sorted(out.items())}


# ------------------------------------------------------------------------------------------------
# The job


def _identities(rows, root: str) -> dict[str, tuple]:
    """Video id -> its identities (see the module docstring)."""
    out = {}
    for vid, file, fp in rows.select("video_id", "path", "fingerprint").iter_rows():
        keys = [("id", os.path.realpath(root), vid)]
        if file:
            keys.append(("file", os.path.realpath(file)))
        if fp:
            keys.append(("content", fp))
        out[vid] = tuple(keys)
    return out


def _rows(tables: dict, s: dict):
    import polars as pl

    return tables[s["dataset"]].filter(pl.col("split") == s["split"])


def _val_rows(model: str, tables: dict, v: dict):
    from .choice import sample_videos

    rows = _rows(tables, v)
    if rows.height == 0:
        listed = sorted(tables[v["dataset"]]["split"].unique().drop_nulls().to_list())
        raise SelectionError(
            f"model {model}: validation set {v['dataset']}/{v['split']} has no video: the index of dataset "
            f"{v['dataset']!r} lists the splits {listed}. Name one of them, or make the dataset list split "
            f"{v['split']!r} (for some adapters an option, e.g. options: {{splits: [{v['split']}]}}), or remove the set")
    return sample_videos(rows, v["max_videos"], v["seed"])


def _overlap(model: str, v: dict, val: dict, against: dict, what: str) -> str | None:
    """The refusal line when validation videos ``val`` share an identity with ``against`` (id -> keys)."""
    keys = {k for ks in against.values() for k in ks}
    shared = sorted(vid for vid, ks in val.items() if keys.intersection(ks))
    if not shared:
        return None
    how = sorted({k[0] for vid in shared for k in val[vid] if k in keys})
    return (f"model {model}: validation set {v['dataset']}/{v['split']} shares {len(shared)} of its {len(val)} "
            f"videos with {what} (same {', '.join(how)}), e.g. {', '.join(shared[:EXAMPLES])}")


def check_selection(spec: dict, videos: dict[str, str], out) -> dict:
    """Check a model's validation sets (``spec``: :func:`spec`) against the videos of its training split
    and of every benchmark's split, read from ``videos`` (dataset -> videos.parquet); write the record to
    ``out`` and return it, or raise :class:`SelectionError` naming every overlap."""
    import polars as pl

    from pipeline.core.files import write_json

    model = spec["model"]
    tables = {ds: pl.read_parquet(videos[ds]) for ds in splits_read(spec)}
    others = [("its training videos", spec["train"], "training")] + [
        (f"benchmark {b}'s test videos ({s['dataset']}/{s['split']})", s, b) for b, s in spec["benchmarks"].items()]
    against = [(what, _identities(_rows(tables, s), s["root"]), s, role) for what, s, role in others]
    problems, sets = [], []
    for v in spec["val_sets"]:
        rows = _val_rows(model, tables, v)
        val = _identities(rows, v["root"])
        problems += [line for what, ids, _, _ in against if (line := _overlap(model, v, val, ids, what))]
        labels = rows.group_by("video_id").agg(pl.col("label").first())["label"]
        sets.append({"dataset": v["dataset"], "split": v["split"], "max_videos": v["max_videos"], "seed": v["seed"],
                     "listed": _rows(tables, v).height, "videos": labels.len(),
                     "real": int((labels == 0).sum()), "fake": int((labels == 1).sum())})
    if problems:
        raise SelectionError("validation videos must be neither training nor test videos:\n  " + "\n  ".join(problems)
                             + "\nSelect on held-out videos (another split, or a dataset entry listing only them), "
                               "or remove the benchmark")
    record = {"model": model, "val_sets": sets, "identities": list(IDENTITIES), "overlaps": 0,
              "checked_against": [{"role": role, "dataset": s["dataset"], "split": s["split"], "videos": len(ids)}
                                  for _, ids, s, role in against]}
    write_json(out, record, indent=1, sort_keys=True)
    return record

