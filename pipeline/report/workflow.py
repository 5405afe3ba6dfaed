"""Gather a config's workflow outputs (paths from ``pipeline.core.layout``) into :func:`build_report`."""

from __future__ import annotations

import json
from pathlib import Path

from . import published
from .build import build_report


def _incomplete_copy(stats_path: str, split: str) -> str | None:
    """The index's message when the user's copy of a benchmark's split misses official videos."""
    if not Path(stats_path).is_file():
        return None
    checks = json.loads(Path(stats_path).read_text()).get("completeness") or []
    msgs = [c["message"] for c in checks if c.get("split") == split and not c.get("complete")]
    return "; ".join(msgs) or None


def shares_reals(datasets: dict, bench_dataset: str, train_dataset: str) -> bool:
    """Whether a benchmark's dataset and a model's training dataset hold the same real videos: the same
    dataset, or one made from the other's download (``source: {dataset: ...}``, like FaceShifter
    beside FF++ c23), or both made from a third."""
    def root(name: str) -> str:
        return (datasets.get(name, {}).get("source") or {}).get("dataset") or name

    return root(bench_dataset) == root(train_dataset)


class _Gather:
    """The paths of one config's outputs; ``have`` raises for a missing one when ``require_all``."""

    def __init__(self, config: dict, require_all: bool, selections=()):
        from pipeline.core.config import model_config, runs
        from pipeline.core.layout import from_config

        self.config, self.require_all, self.L = config, require_all, from_config(config)
        # one entry per run (a seeded model's runs are <model>-seed<N>); the report groups them by model
        self.models, self.benchmarks = runs(config), list(config["benchmarks"])
        self.model_cfg = {m: model_config(config, m) for m in self.models}
        # the selection rule's records (results/models/<model>/...), as the report rule's input lists them
        self.selections = {Path(p).parent.name: p for p in selections}

    def have(self, path: str) -> bool:
        if Path(path).is_file():
            return True
        if self.require_all:
            raise FileNotFoundError(f"report: {path} does not exist; run the workflow to produce it")
        return False

    def evaluations(self) -> list[dict]:
        # A benchmark on the dataset a model trained on is in-domain: shown, marked, left out of its mean.
        # One that shares its real videos with it (FaceShifter) is marked and counted, as in the papers.
        L, benches, ds = self.L, self.config["benchmarks"], self.config["datasets"]
        return [{"model": m, "benchmark": b, "metrics_path": L.metrics(m, b), "scores_path": L.scores(m, b),
                 "in_domain": benches[b]["dataset"] == self.model_cfg[m]["data"]["dataset"],
                 "shares_reals": shares_reals(ds, benches[b]["dataset"], self.model_cfg[m]["data"]["dataset"]),
                 "incomplete": _incomplete_copy(L.stats(benches[b]["dataset"]), benches[b]["split"])}
                for m in self.models for b in self.benchmarks if self.have(L.metrics(m, b)) and self.have(L.scores(m, b))]

    def robustness(self) -> list[dict]:
        from pipeline.core.config import corruptions, robustness_models

        return [{"model": m, "benchmark": b, "path": self.L.robustness(m, b)}
                for m in robustness_models(self.config) for b in corruptions(self.config)
                if self.have(self.L.robustness(m, b))]

    def datasets(self) -> list[dict]:
        from pipeline.core.config import used_datasets

        L = self.L
        return [{"name": ds, "stats_path": L.stats(ds),
                 "checksums": L.dataset_marker(ds) if Path(L.dataset_marker(ds)).is_file() else {}}
                for ds in used_datasets(self.config) if self.have(L.stats(ds))]

    def trainings(self) -> list[dict]:
        return [{"model": m, "log_path": self.L.train_log(m), "config": self.model_cfg[m], "adapter": self.adapter(m),
                 "selection": self.selection(m)} for m in self.models if self.have(self.L.train_log(m))]

    def selection(self, model: str) -> dict | None:
        path = self.selections.get(model)
        return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None

    def adapter(self, model: str) -> dict:
        from pipeline.core.markers import sha256_file
        from pipeline.model import read_adapter_meta

        path = self.L.adapter(model)
        if not Path(path).is_file():
            return {"path": path}
        return {"path": path, "sha256": sha256_file(path), "meta": read_adapter_meta(path)}

    def weights(self) -> list[dict]:
        names = dict.fromkeys(self.model_cfg[m]["weights"] for m in self.models)
        out = [{"name": n, "checksums": self.L.weights_marker(n)} for n in names
               if Path(self.L.weights_marker(n)).is_file()]
        adapters = {m: a["sha256"] for m in self.models if "sha256" in (a := self.adapter(m))}
        return out + ([{"name": "adapters (trained)", "checksums": adapters}] if adapters else [])


def report_from_workflow(out_html, config: dict, *, require_all: bool = True, csv=None, selections=()) -> dict:
    """The report of a config's outputs; ``metrics.csv`` goes to ``csv`` (default: beside the page).

    ``require_all=False`` (the command line's ``report`` verb) reports whatever has been computed so
    far and leaves out evaluations, training logs and statistics that do not exist yet. ``selections``:
    the selection rule's records (``selection.json`` of each gradient-trained model), shown with training.
    """
    from pipeline import __version__
    from pipeline.core.provenance import git_revision, host_provenance, package_versions
    from .provenance_section import build_date

    g = _Gather(config, require_all, selections)
    provenance = {"config": config, "code_version": git_revision(), "pipeline_version": __version__,
                  "date": build_date(), **host_provenance(), "packages": package_versions(), "weights": g.weights()}
    bench_cols = published.columns_of(config)
    return build_report(out_html, evaluations=g.evaluations(), datasets=g.datasets(), trainings=g.trainings(),
                        provenance=provenance, robustness=g.robustness(),
                        published=published.rows_for(g.benchmarks, bench_cols), settings=g.model_cfg,
                        published_columns=bench_cols,
                        out_csv=csv if csv is not None else Path(out_html).with_name("metrics.csv"),
                        title=config["report"]["title"], demo=config["demo"])  # defaults: the schema's
