"""The config schema's defaults: what a job that runs without the whole config (the faces, features,
evaluation and training code, tests, the command line) takes for a setting, and the canonical form of
settings. Kept apart from :mod:`pipeline.core.config` (the planning side: checks, runs, per-rule slices),
so the jobs that read only defaults are not keyed on planning code: an edit to the config's checks or
naming reruns no faces or evaluation job.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@lru_cache(maxsize=4)
def _schema(path: str) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def complete(value, schema: dict, root: dict):
    """``value`` with the schema's defaults filled in wherever a key is absent (nested objects too, as
    far as the schema gives them defaults) and integers turned into floats where the schema asks for a
    number: the form in which two equal configs are equal whatever was written out."""
    for sub in _branches(schema, root):
        value = _complete_one(value, sub, root)
    return value


def _branches(schema: dict, root: dict) -> list[dict]:
    """The schema itself with its ``$ref`` resolved, and every ``allOf`` part."""
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return _branches(node, root) + _branches({k: v for k, v in schema.items() if k != "$ref"}, root)
    return [schema] + [b for part in schema.get("allOf", []) for b in _branches(part, root)]


def _complete_one(value, schema: dict, root: dict):
    if isinstance(value, dict):
        out = dict(value)
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = complete(out[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in props:
                    out[key] = complete(out[key], extra, root)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [complete(v, schema["items"], root) for v in value]
    types = schema.get("type")
    if isinstance(value, int) and not isinstance(value, bool) and (types == "number" or (
            isinstance(types, list) and "number" in types and "integer" not in types)):
        return float(value)
    return value


def defaults(*path: str) -> dict:
    """The schema's defaults of one section, e.g. ``defaults("faces")`` or ``defaults("model", "augment")``
    (``model`` is a model entry's schema): what code that runs without a config (tests, benchmarks, the
    command line) takes, so every default has one owner."""
    doc = _schema(str(SCHEMA))
    node = doc["$defs"]["model"] if path[0] == "model" else doc["properties"][path[0]]
    for key in path[1:]:
        node = _branches(node, doc)[0]["properties"][key]
    return complete({}, node, doc)


def canonical(value):
    """``value`` with every mapping's keys in sorted order and tuples as lists: the form in which rule
    params compare equal when only the order of keys in the config differs."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def complete_model(cfg: dict) -> dict:
    """A model's settings with the schema's defaults for every key they do not set (a copy)."""
    doc = _schema(str(SCHEMA))
    cfg = copy.deepcopy(cfg)
    if cfg.get("kind") == "logistic":
        cfg.setdefault("logistic", {})  # its settings get their defaults
    return complete(cfg, doc["$defs"]["model"], doc)
