"""Provenance section: configuration, code and package versions, Python, date, devices, checksums."""

from __future__ import annotations

import json
import os
import time

from .datastats import checksum_rows
from .util import DASH, dump_config


def build_date() -> str:
    """The report's date (UTC): ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = int(epoch) if epoch and epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _checksum_groups(datasets: list[dict], weights: list[dict]) -> list[dict]:
    groups = []
    for kind, entries in (("dataset", datasets), ("weights", weights)):
        for e in entries:
            rows, more = checksum_rows(e.get("checksums"))
            groups.append({"name": f"{kind} {e.get('name')}", "rows": rows, "more": more})
    return groups


def _value(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return "; ".join(v)
    return json.dumps(v, default=str, sort_keys=True)


def provenance_context(provenance: dict, datasets: list[dict], devices: list[str]) -> dict:
    """``provenance``: ``config``, ``code_version``, ``packages``, ``weights`` (``{name, checksums}``
    entries) and any other keys (shown as rows: python, date, host, ...). ``devices``: what computed
    the evaluations (GPU or CPU models, from their ``metrics.json``)."""
    prov = dict(provenance or {})
    packages = prov.pop("packages", None) or {}
    weights = prov.pop("weights", None) or []
    if devices:
        prov["evaluation device"] = sorted(set(devices))
    return {
        "config": dump_config(prov.pop("config", None)),
        "code_version": str(prov.pop("code_version", "") or DASH),
        "packages": sorted((str(k), str(v)) for k, v in packages.items()) if isinstance(packages, dict) else [],
        "other": [(str(k), _value(v)) for k, v in prov.items()],
        "checksums": _checksum_groups(datasets, weights),
    }
