"""Code keys: a job reruns for a code edit only when a module it executes changed.

Snakemake reruns a job when its ``script:`` file changes, not when a module that script imports
does. Each rule therefore gets a ``code`` param: the key of the ``pipeline`` modules its job runs.

* After a job has run, the job itself has recorded (:func:`write_record`, beside its log, as a compiler
  writes a dependency file beside its object) the ``pipeline`` modules it actually imported and the
  digest of each. The next plan keys the job on exactly those modules (:func:`code_key`): while none of
  them changed, the key is the one the job ran under, so nothing reruns; once one changed, the key is
  new and the job reruns (and records again).
* Before a job's first run there is no record: the key covers the static import closure of its script
  (every ``pipeline`` import reachable from it, imports inside functions included, names handed on by
  a package's ``_EXPORTS`` as their modules), and of the modules a registry picks for this job by name
  (its dataset's adapter, its face backend, its kind of model), which no import statement names.

A module's digest hashes its syntax tree, not its bytes: comments and formatting never rerun anything,
a changed statement or constant does. Planning needs only the standard library here.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "pipeline"
RECORD_FORMAT = "lnclip-df-code/1"
MISSING = "missing"  # digest of a recorded module whose file is gone (moved or deleted)


def _module_path(root: Path, module: str) -> Path | None:
    return _find_module(str(root), module)


@lru_cache(maxsize=8192)
def _find_module(root: str, module: str) -> Path | None:
    rel = Path(*module.split("."))
    for candidate in (Path(root) / rel.with_suffix(".py"), Path(root) / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, package: str, root: Path) -> set[str]:
    """``pipeline.*`` modules imported anywhere in ``tree`` (absolute and relative imports);
    ``package``: the package relative imports resolve against. A name taken from a package that hands
    on its modules' names lazily (``_EXPORTS``) counts as its module."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from pipeline import core" imports the submodule pipeline.core
            exports = _lazy_exports(root, prefix)
            names = [prefix] + [f"{prefix}.{exports.get(alias.name, alias.name)}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


@lru_cache(maxsize=256)
def _lazy_exports_of(path: str, mtime_ns: int) -> dict[str, str]:
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _lazy_exports(root: Path, package: str) -> dict[str, str]:
    """``name -> module`` that a package's ``__init__`` hands on lazily (its ``_EXPORTS``), if any."""
    init = root / Path(*package.split(".")) / "__init__.py"
    return _lazy_exports_of(str(init), init.stat().st_mtime_ns) if init.is_file() else {}


@lru_cache(maxsize=4096)
def _imports_of(path: str, mtime_ns: int, size: int, package: str, root: str) -> frozenset[str]:
    """:func:`_imported_modules` of one file, read once per version of the file."""
    return frozenset(_imported_modules(ast.parse(Path(path).read_text(), filename=path), package, Path(root)))


def module_closure(*entries: str, root: Path | str) -> dict[str, Path]:
    """Every ``pipeline`` module reachable by imports from ``entries``: name -> file.

    An entry is a module name, or the path of a Python file outside the package (a workflow script):
    the modules it imports are followed, the file itself is not included."""
    root = Path(root)
    seen: dict[str, Path] = {}
    required = [e for e in entries if not e.endswith(".py")]
    todo = list(required)
    for script in (e for e in entries if e.endswith(".py")):
        st = Path(script).stat()
        todo.extend(_imports_of(str(script), st.st_mtime_ns, st.st_size, "__script__", str(root)))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_path(root, module)
        if path is None:
            if module in required:
                raise ValueError(f"code keys: module {module!r} not found under {root}")
            continue  # "from pipeline.x import name": name is not a module
        seen[module] = path
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        st = path.stat()
        todo.extend(_imports_of(str(path), st.st_mtime_ns, st.st_size, package, str(root)) - seen.keys())
    return dict(sorted(seen.items()))


@lru_cache(maxsize=4096)
def _tree_digest(path: str, mtime_ns: int, size: int) -> str:
    tree = ast.parse(Path(path).read_text(), filename=path)
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()[:16]


def module_digest(root: Path | str, module: str) -> str:
    """Digest of one module's syntax tree (:data:`MISSING` when its file is gone)."""
    path = _module_path(Path(root), module)
    try:
        st = path.stat() if path is not None else None
    except FileNotFoundError:
        st = None
    return MISSING if st is None else _tree_digest(str(path), st.st_mtime_ns, st.st_size)


def _key(digests: dict[str, str]) -> str:
    text = "".join(f"{name}:{digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_record(path: str | Path) -> dict | None:
    """A job's record (``{"key", "modules": {name: digest}}``), or None when absent or unreadable."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if record.get("format") != RECORD_FORMAT or not isinstance(record.get("modules"), dict):
        return None
    return record


def code_key(script: str | Path, record: str | Path, root: str | Path, entries: tuple[str, ...] = ()) -> str:
    """The code key of one job: the key it ran under while the modules it recorded are unchanged, a new
    key once one changed; before its first run, the static closure of ``script`` and of ``entries`` (the
    modules a registry imports by name for this job: its dataset's adapter, its kind of model)."""
    found = read_record(record)
    if found is not None:
        now = {name: module_digest(root, name) for name in found["modules"]}
        return found["key"] if now == found["modules"] else _key(now)
    closure = module_closure(str(script), *entries, root=root)
    return _key({name: module_digest(root, name) for name in closure})


def imported_modules(root: str | Path) -> dict[str, str]:
    """The ``pipeline`` modules this process has imported, with their digests under ``root``."""
    names = [name for name in list(sys.modules) if name == PACKAGE or name.startswith(PACKAGE + ".")]
    return {name: module_digest(root, name) for name in sorted(names)
            if _module_path(Path(root), name) is not None}


def write_record(path: str | Path, key: str, root: str | Path) -> None:
    """Record, at the end of a job that ran under ``key``, the modules it imported (one process of a
    multi-GPU job, rank 0, records)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from pipeline.core.files import write_json

    write_json(path, {"format": RECORD_FORMAT, "key": key, "modules": imported_modules(root)}, sort_keys=True)
