import shutil

import pytest

from pipeline.provenance import code_digest, module_closure


@pytest.fixture
def tree(tmp_path):
    """A small copy of a package with a known import graph."""
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "losses.py").write_text("SCALE = 2.0\n\ndef loss(x):\n    return SCALE * x\n")
    (pkg / "model.py").write_text("import torch\n")
    (pkg / "train.py").write_text("from pipeline.losses import loss\nfrom . import model\n\ndef f():\n"
                                  "    from pipeline import util\n")
    (pkg / "util.py").write_text("X = 1\n")
    (pkg / "report.py").write_text("import pipeline.util as u\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "train.py").write_text("from pipeline.train import f\nf()\n")
    return tmp_path


def test_closure_follows_absolute_relative_and_lazy_imports(tree):
    mods = module_closure("pipeline.train", root=tree)
    assert set(mods) == {"pipeline", "pipeline.train", "pipeline.losses", "pipeline.model", "pipeline.util"}
    assert set(module_closure("pipeline.report", root=tree)) == {"pipeline", "pipeline.report", "pipeline.util"}


def test_script_entry_follows_the_script_imports(tree):
    script = str(tree / "scripts" / "train.py")
    assert code_digest(script, root=tree) == code_digest("pipeline.train", root=tree)


def test_digest_ignores_comments_and_formatting_but_not_code(tree):
    before = code_digest("pipeline.train", root=tree)
    report = code_digest("pipeline.report", root=tree)
    losses = tree / "pipeline" / "losses.py"
    losses.write_text("# a comment\nSCALE = 2.0   # the same value\n\n\ndef loss(x):\n    return SCALE*x\n")
    from pipeline import provenance

    provenance._cached_digest.cache_clear()
    assert code_digest("pipeline.train", root=tree) == before
    losses.write_text("SCALE = 3.0\n\ndef loss(x):\n    return SCALE * x\n")
    provenance._cached_digest.cache_clear()
    assert code_digest("pipeline.train", root=tree) != before
    # the report does not import losses: its digest is unchanged
    assert code_digest("pipeline.report", root=tree) == report


def test_unknown_entry_module_is_an_error(tree):
    with pytest.raises(ValueError, match="pipeline.nope"):
        code_digest("pipeline.nope", root=tree)


def test_real_workflow_digests_separate_training_from_reporting(repo, tmp_path):
    """A loss change reruns training, not the report; a report change, the reverse."""
    from pipeline import provenance

    shutil.copytree(repo / "pipeline", tmp_path / "pipeline")
    shutil.copytree(repo / "workflow" / "scripts", tmp_path / "scripts")

    def digests():
        provenance._cached_digest.cache_clear()
        return {s: code_digest(str(tmp_path / "scripts" / f"{s}.py"), root=tmp_path)
                for s in ("train", "evaluate", "report", "faces")}

    base = digests()
    with open(tmp_path / "pipeline" / "losses.py", "a") as fh:
        fh.write("\nEXTRA_CONSTANT = 1\n")
    after = digests()
    assert after["train"] != base["train"]
    assert after["report"] == base["report"]
    assert after["faces"] == base["faces"]
    with open(tmp_path / "pipeline" / "report.py", "a") as fh:
        fh.write("\nEXTRA_CONSTANT = 1\n")
    again = digests()
    assert again["report"] != after["report"]
    assert again["train"] == after["train"]
