"""Results that went missing in the middle of the chain, found before Snakemake plans the run.

Snakemake reruns a job when its output is missing *and some job that needs it must run*; an
intermediate file that disappears while everything built from it is still there is ignored, by
design (that is how ``temp()`` files work). For this workflow that is wrong: when an index fails
after an edit, Snakemake deletes its ``videos.parquet``, and the next run would say "Nothing to be
done" and keep the evaluations and the report built from the old index. :func:`damaged_outputs`
finds every such file, so the workflow can force it (and therefore everything downstream of it) to
be rebuilt in the same run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Callable

from pipeline.core import config as pconfig
from pipeline.core import layout


def dependency_edges(config: dict) -> dict[str, list[str]]:
    """File -> the files the workflow builds directly from it (the parts of the DAG that can be
    listed without running anything: shards only once their index exists)."""
    from pipeline.core.tables import chunks

    L = layout.from_config(config)
    down: dict[str, list[str]] = defaultdict(list)
    splits = pconfig.dataset_splits(config)
    for ds, ds_splits in splits.items():
        down[L.videos(ds)].append(L.frames(ds))
        if os.path.exists(L.videos(ds)):
            for split, chunk in chunks(L.videos(ds), ds_splits):
                for ext in ("parquet", "tar"):
                    down[L.videos(ds)].append(L.shard(ds, split, chunk, ext))
                    down[L.shard(ds, split, chunk, ext)].append(L.frames(ds))
        down[L.stats(ds)].append(L.report())
    for model in pconfig.runs(config):
        cfg = pconfig.model_config(config, model)
        for ds in {cfg["data"]["dataset"]} | {ds for ds, _ in pconfig.val_sets(cfg)}:
            down[L.frames(ds)].append(L.adapter(model))
        down[L.adapter(model)].append(L.report())
        down[L.train_log(model)].append(L.report())
        for bench, spec in config["benchmarks"].items():
            down[L.frames(spec["dataset"])].append(L.metrics(model, bench))
            down[L.adapter(model)].append(L.metrics(model, bench))
            down[L.metrics(model, bench)].append(L.report())
            down[L.scores(model, bench)].append(L.report())
    return down


def damaged_outputs(config: dict, was_built: Callable[[str], bool] = lambda path: False) -> dict[str, str]:
    """Missing file -> the existing file that shows results were built from it.

    The evidence is an existing file built from it directly or further down, other than the report.
    The report alone is no evidence (it exists before a new benchmark or model is added), unless
    ``was_built(path)`` says the file existed once (Snakemake holds a record of it).
    """
    down = dependency_edges(config)
    report = layout.from_config(config).report()
    exists: dict[str, bool] = {}

    def present(path: str) -> bool:
        if path not in exists:
            exists[path] = os.path.exists(path)
        return exists[path]

    def existing_descendant(path: str, seen: set[str]) -> str | None:
        for child in down.get(path, ()):
            if child in seen or child == report:
                continue
            seen.add(child)
            if present(child):
                return child
            found = existing_descendant(child, seen)
            if found:
                return found
        return None

    damaged = {}
    for path in sorted(down):
        if present(path):
            continue
        found = existing_descendant(path, set())
        if found is None and present(report) and was_built(path):
            found = report
        if found:
            damaged[path] = found
    return damaged
