"""Code digests and provenance for Snakemake rerun decisions and the report.

Snakemake reruns a job when its ``script:`` file changes, but not when a module that script
imports changes (Snakemake's rerun triggers). Each rule therefore gets a ``params`` entry with
:func:`code_digest` of the ``pipeline`` modules its entry point depends on. The dependency set is
found by following ``pipeline.*`` imports statically (``ast``), so adding an import to a module
extends the digest without anyone updating a list. The digest hashes the *syntax tree*, not the
bytes: comments and formatting do not rerun anything, a changed constant or statement does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGE = "pipeline"
PACKAGE_DIR = Path(__file__).resolve().parent


def _module_path(root: Path, module: str) -> Path | None:
    rel = Path(*module.split("."))
    for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """``pipeline.*`` modules imported anywhere in ``tree`` (absolute and relative imports)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
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
            # "from pipeline import losses" imports the submodule pipeline.losses
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def module_closure(*entry_modules: str, root: Path | str | None = None) -> dict[str, Path]:
    """All ``pipeline`` modules reachable by imports from ``entry_modules``: name -> file.

    An entry may also be the path of a Python file outside the package (a workflow script): the
    modules it imports are followed, the file itself is not included.
    """
    root = Path(root) if root is not None else PACKAGE_DIR.parent
    seen: dict[str, Path] = {}
    required = [e for e in entry_modules if not e.endswith(".py")]
    todo = list(required)
    for script in (e for e in entry_modules if e.endswith(".py")):
        tree = ast.parse(Path(script).read_text(), filename=script)
        todo.extend(_imported_modules(tree, "__script__", False))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_path(root, module)
        if path is None:
            if module in required:
                raise ValueError(f"code_digest: module {module!r} not found under {root}")
            continue  # "from pipeline.x import name": name is not a module
        seen[module] = path
        tree = ast.parse(path.read_text(), filename=str(path))
        todo.extend(_imported_modules(tree, module, path.name == "__init__.py") - seen.keys())
    return dict(sorted(seen.items()))


def _tree_digest(path: Path) -> str:
    tree = ast.parse(path.read_text(), filename=str(path))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


@lru_cache(maxsize=None)
def _cached_digest(entry_modules: tuple[str, ...], root: str) -> str:
    h = hashlib.sha256()
    for name, path in module_closure(*entry_modules, root=Path(root)).items():
        h.update(f"{name}:{_tree_digest(path)}\n".encode())
    return h.hexdigest()[:16]


def code_digest(*entry_modules: str, root: Path | str | None = None) -> str:
    """A short digest of the code of ``entry_modules`` and every ``pipeline`` module they import.

    Entries are module names (``"pipeline.train"``) or paths of scripts whose imports are followed
    (``"workflow/scripts/train.py"``). ``root`` is the directory that holds the ``pipeline``
    package (default: this checkout).
    """
    root = Path(root) if root is not None else PACKAGE_DIR.parent
    return _cached_digest(tuple(sorted(entry_modules)), str(root.resolve()))


def package_versions(names=("torch", "transformers", "snakemake", "webdataset", "polars", "pyarrow",
                            "numpy", "opencv-python", "dlib-bin", "scikit-learn", "scikit-image")) -> dict:
    """Installed versions of the packages that shape the results (None when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(cwd: Path | str | None = None) -> str | None:
    """``git describe --always --dirty`` of the checkout, or None outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=cwd or PACKAGE_DIR,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()``)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_description(device=None) -> str:
    """What computed on ``device``: ``cuda: <GPU model>`` for a GPU, else ``cpu: <CPU model>``."""
    kind = str(device if device is not None else "cpu")
    if kind.startswith("cuda"):
        import torch

        return f"cuda: {torch.cuda.get_device_name(torch.device(kind))}"
    if kind.startswith("mps"):
        return "mps: Apple GPU"
    return f"cpu: {cpu_model()}"


def host_provenance() -> dict:
    """Python, platform and CPU/GPU of the machine that runs this, for the report's provenance."""
    import platform

    out = {"python": f"{platform.python_implementation()} {platform.python_version()}",
           "platform": platform.platform(), "cpu": cpu_model()}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return out
