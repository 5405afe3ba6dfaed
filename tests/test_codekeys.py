"""Code keys: a job's ``code`` param follows the modules the job ran (pipeline.workflow.codekeys)."""

import json
import subprocess
import sys

import pytest

from pipeline.workflow import codekeys


@pytest.fixture
def tree(tmp_path):
    """A small package with a known import graph, and a script that uses part of it."""
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "losses.py").write_text("SCALE = 2.0\n\ndef loss(x):\n    return SCALE * x\n")
    (pkg / "model.py").write_text("import json\n")
    (pkg / "train.py").write_text("from pipeline.losses import loss\nfrom . import model\n\ndef f():\n"
                                  "    from pipeline import util\n")
    (pkg / "util.py").write_text("X = 1\n")
    (pkg / "report.py").write_text("import pipeline.util as u\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "train.py").write_text("from pipeline.train import loss\nprint(loss(1))\n")
    return tmp_path


def test_static_closure_follows_absolute_relative_and_lazy_imports(tree):
    mods = codekeys.module_closure("pipeline.train", root=tree)
    assert set(mods) == {"pipeline", "pipeline.train", "pipeline.losses", "pipeline.model", "pipeline.util"}
    assert set(codekeys.module_closure("pipeline.report", root=tree)) == {"pipeline", "pipeline.report", "pipeline.util"}
    with pytest.raises(ValueError, match="pipeline.nope"):
        codekeys.module_closure("pipeline.nope", root=tree)


JOB = """
import runpy, sys
from pipeline.workflow import codekeys  # this checkout's
for name in [n for n in sys.modules if n.split(".")[0] == "pipeline"]:
    del sys.modules[name]
sys.path.insert(0, {tree!r})  # the job runs the tree's package
runpy.run_path({script!r})
codekeys.write_record({record!r}, {key!r}, {tree!r})
"""


def _run(tree, record):
    """Run the script as a job would, then record the modules it imported under the key it ran under."""
    key = codekeys.code_key(tree / "scripts/train.py", record, tree)
    job = JOB.format(tree=str(tree), script=str(tree / "scripts/train.py"), record=str(record), key=key)
    subprocess.run([sys.executable, "-c", job], check=True, capture_output=True)
    return key


def test_a_job_is_keyed_on_the_modules_it_ran(tree, tmp_path):
    record = tmp_path / "logs" / "train.modules.json"
    record.parent.mkdir()
    first = codekeys.code_key(tree / "scripts/train.py", record, tree)  # before a first run: the static closure
    ran = _run(tree, record)
    assert ran == first
    modules = json.loads(record.read_text())["modules"]
    assert {"pipeline.train", "pipeline.losses", "pipeline.model"} <= set(modules)
    assert "pipeline.util" not in modules and "pipeline.report" not in modules  # never imported by this job
    assert codekeys.code_key(tree / "scripts/train.py", record, tree) == ran  # nothing changed: the same key

    # a module the job did not run, comments and formatting: the same key
    (tree / "pipeline/util.py").write_text("X = 1\nY = 2\n")
    (tree / "pipeline/losses.py").write_text("# a comment\nSCALE = 2.0   # the same\n\n\ndef loss(x):\n    return SCALE*x\n")
    assert codekeys.code_key(tree / "scripts/train.py", record, tree) == ran
    # a statement in a module it ran: a new key, and the same key again once the job has rerun
    (tree / "pipeline/losses.py").write_text("SCALE = 3.0\n\ndef loss(x):\n    return SCALE * x\n")
    changed = codekeys.code_key(tree / "scripts/train.py", record, tree)
    assert changed != ran
    assert _run(tree, record) == changed == codekeys.code_key(tree / "scripts/train.py", record, tree)
    # a module it ran that is gone (moved or deleted): a new key
    (tree / "pipeline/model.py").unlink()
    assert codekeys.code_key(tree / "scripts/train.py", record, tree) != changed


# The jobs that crop, index, cache features and evaluate: hours on FF++ c23. They read only the schema's
# defaults (pipeline.core.schema), never the planning side of the config (runs, checks, per-rule slices),
# so an edit there reruns none of them.
DATA_AND_EVALUATION_SCRIPTS = ("faces", "index", "import_crops", "manifest", "features", "evaluate", "robustness")


@pytest.mark.parametrize("script", DATA_AND_EVALUATION_SCRIPTS)
def test_data_and_evaluation_jobs_are_not_keyed_on_the_planning_config(repo, script):
    closure = codekeys.module_closure(str(repo / "workflow" / "scripts" / f"{script}.py"), root=repo)
    assert "pipeline.core.schema" in closure or script in ("index", "manifest", "import_crops")
    assert "pipeline.core.config" not in closure


def test_the_faces_job_really_imports_no_planning_config(repo):
    """What the faces job's process imports (its record), not only what its imports say."""
    code = ("import sys; import pipeline.faces.extract, pipeline.workflow.job, pipeline.core.tables; "
            "print('pipeline.core.config' in sys.modules, 'pipeline.core.schema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
