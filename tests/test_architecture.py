"""The house: one package per stage over a core that imports no stage, and planning without the compute stack.

The import graph is read from the code (every ``import`` and ``from ... import``, those inside functions
included), so a new import that breaks the layout fails here before anyone draws the picture.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from test_workflow import copy_workflow

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipeline"
STAGES = ("fetch", "datasets", "faces", "model", "training", "evaluation", "report", "predict", "serve",
          "export")


def module_name(path: Path) -> str:
    """``pipeline/faces/chunk.py`` -> ``pipeline.faces.chunk``."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every ``pipeline`` module or name that ``path`` imports (relative imports resolved). ``from X
    import m`` of a module ``X.m`` counts as importing ``X.m`` only: a package is always initialised
    before its modules, which is not an import of the package by the module."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = {f"{target}.{a.name}" for a in node.names}
            modules = {m for m in subs if m in MODULES}
            out.update(modules or {target})
            out.update(subs - modules if modules and subs - modules else set())
    ancestors = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)}
    return {m for m in out if (m == "pipeline" or m.startswith("pipeline.")) and m not in ancestors}


def graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (a name imported from a module counts as that module)."""
    return {mod: {m if m in MODULES else m.rpartition(".")[0] for m in imports(path)} & set(MODULES) - {mod}
            for mod, path in MODULES.items()}


def stage_of(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_import_cycle():
    g, state, cycles = graph(), {}, []

    def visit(mod, trail):
        state[mod] = "open"
        for dep in sorted(g[mod]):
            if state.get(dep) == "open":
                cycles.append(trail[trail.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[mod] = "done"

    for mod in sorted(g):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


def test_the_core_imports_no_stage():
    wrong = {mod: sorted(d for d in deps if stage_of(d) not in ("core", None))
             for mod, deps in graph().items() if stage_of(mod) == "core"}
    assert {m: d for m, d in wrong.items() if d} == {}


def test_no_stage_imports_another_stages_internals():
    """A stage uses another stage through its package (``from pipeline.faces import make_backend``), never
    through one of its modules; nor does it use the workflow glue."""
    wrong = []
    for mod, path in MODULES.items():
        own = stage_of(mod)
        if own not in STAGES:
            continue
        for target in imports(path):
            other = stage_of(target)
            if other == "workflow" or (other in STAGES and other != own and target.count(".") > 1
                                       and target.rpartition(".")[0] != f"pipeline.{other}"):
                wrong.append(f"{mod} -> {target}")
    assert wrong == []


def test_every_module_belongs_to_the_core_a_stage_or_the_workflow_glue():
    flat = sorted(m for m in MODULES if stage_of(m) not in ("core", "workflow", *STAGES))
    assert flat == ["pipeline", "pipeline.__main__"]  # the package's face and the command line
    rules = {p.stem for p in (REPO / "workflow/rules").glob("*.smk")} - {"common"}
    assert rules <= set(STAGES), "one rule file per stage, named after its package"


# Planning (a dry run) must not need the compute stack: on a login node, or with
# --software-deployment-method conda, the planning environment has only Snakemake and the light packages.
HEAVY = ("cv2", "torch", "transformers", "dlib", "face_alignment", "qoi", "pyspng", "safetensors", "numpy", "PIL",
         "sklearn", "matplotlib", "huggingface_hub", "kaggle", "webdataset", "skimage", "scipy")
BLOCKER = f"""
import importlib.abc, importlib.util, sys
class Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError(f"planning imported {{spec.name}}")
    def exec_module(self, module):
        pass
class Blocker(importlib.abc.MetaPathFinder):  # found (a library may check that it exists), never importable
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            return importlib.util.spec_from_loader(name, Refuse())
sys.meta_path.insert(0, Blocker())
"""


@pytest.mark.parametrize("config", ["config.yaml", "config/demo.yaml", "config/demo_paired_vs_unpaired.yaml"])
def test_planning_imports_no_compute_package(tmp_path, config):
    work = tmp_path / "work"
    work.mkdir()
    copy_workflow(REPO, work)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", f"--configfile={config}", "--cores", "2"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "planning imported" not in out and "Job stats" in out


def test_every_imported_name_exists():
    """Every ``from pipeline... import name`` (inside functions too, and in the workflow's scripts and the
    benchmarks) names something its module has: a moved function fails here, not in the job that runs it."""
    import importlib

    files = [*MODULES.values(), *sorted((REPO / "workflow/scripts").glob("*.py")), *sorted((REPO / "benchmarks").glob("*.py"))]
    missing = []
    for path in files:
        mod = module_name(path) if path.is_relative_to(PACKAGE) else ""
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "pipeline" or target.startswith("pipeline.")):
                continue
            module = importlib.import_module(target)
            missing += [f"{path.relative_to(REPO)}:{node.lineno}: {target}.{a.name}" for a in node.names
                        if a.name != "*" and not hasattr(module, a.name) and f"{target}.{a.name}" not in MODULES]
    assert missing == []
