"""Formatting and reading helpers shared by the report's sections."""

from __future__ import annotations

import json
import math
import re

DASH = "\u2014"


def slug(name: str) -> str:
    """An HTML id fragment for ``name`` (letters, digits, ``_`` and ``-``; others become ``-``)."""
    s = re.sub(r"[^A-Za-z0-9_\-]+", "-", str(name)).strip("-")
    return s or "x"


def unique_slugs(names: list[str], taken: set[str] | None = None) -> dict[str, str]:
    """``slug`` of each name, with ``-2``, ``-3``, ... appended where two names share a slug."""
    out, used = {}, set(taken or ())
    for n in names:
        base = s = slug(n)
        k = 2
        while s in used:
            s, k = f"{base}-{k}", k + 1
        used.add(s)
        out[n] = s
    return out


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x, digits: int = 2) -> str:
    """``x`` (a fraction) as a percentage string; missing/NaN -> an em dash."""
    return f"{100.0 * x:.{digits}f}" if finite(x) else DASH


def num(x) -> str:
    if isinstance(x, bool) or x is None:
        return DASH if x is None else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.0f}" if x.is_integer() else f"{x:,.3g}"
    return str(x)


def get(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def read_json(path, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"report: {what} not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"report: {what} {path} is not valid JSON: {exc}") from exc


def ci_text(ci) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(finite(v) for v in ci):
        return f"[{pct(ci[0])}, {pct(ci[1])}]"
    return ""


def inline_counts(d) -> str:
    if not isinstance(d, dict) or not d:
        return DASH
    return " · ".join(f"{k} {num(v)}" for k, v in d.items())


def dump_config(cfg) -> str:
    """A config as YAML (no anchors/aliases: shared objects print in full), or as given if a string."""
    if cfg is None:
        return ""
    if isinstance(cfg, str):
        return cfg
    try:
        import yaml

        class NoAliases(yaml.SafeDumper):
            def ignore_aliases(self, data):
                return True

        return yaml.dump(cfg, Dumper=NoAliases, sort_keys=False, default_flow_style=False, allow_unicode=True,
                         width=100)
    except Exception:  # not YAML-representable: fall back to JSON
        return json.dumps(cfg, indent=2, default=str)
