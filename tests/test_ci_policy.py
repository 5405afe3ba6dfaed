"""CI cannot be green by not running things: skips, hangs and an impossible SLURM stage fail it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]

PLANTED = '''
import time
import pytest

CI_ALLOWED_SKIPS = {"test_allowed": "the data is not ours to ship"}

def test_planted_skip():
    pytest.skip("a tool is missing")

@pytest.mark.skipif(True, reason="a tool is missing")
def test_planted_skipif():
    pass

def test_allowed():
    pytest.skip("needs the user's own copy")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

def test_passes():
    assert True
'''


def _run(pytester, monkeypatch, ci: str | None, *args):
    pytester.makeconftest("from ci_policy import *  # noqa: F401,F403\n")
    pytester.makepyfile(test_planted=PLANTED)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_a_planted_skip_fails_in_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "true", "-rf")
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1)  # a skipif skips at setup
    result.stdout.fnmatch_lines(["*test_planted_skip*skipped under CI=true (a tool is missing)*CI_ALLOWED_SKIPS*"])


def test_outside_ci_a_skip_is_a_skip(pytester, monkeypatch):
    _run(pytester, monkeypatch, None).assert_outcomes(passed=1, skipped=3, xfailed=1)
    _run(pytester, monkeypatch, "false").assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_a_file_skipped_at_import_fails_in_ci(pytester, monkeypatch):
    pytester.makeconftest("from ci_policy import *  # noqa: F401,F403\n")
    pytester.makepyfile(test_gone='import pytest\npytest.importorskip("no_such_module_here")\n'
                                  'def test_x():\n    pass\n')
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*test_gone.py*skipped under CI=true*no_such_module_here*"])


def test_a_planted_hang_ends_at_its_time_limit(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))
    pytester.makeconftest("from ci_policy import *  # noqa: F401,F403\n")
    pytester.makepyfile(test_hang="import time\ndef test_hang():\n    time.sleep(120)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=3", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*3*"])


def test_the_suite_has_a_time_limit_and_slow_tests_a_longer_one(request):
    assert request.config.getini("timeout") not in (None, "", "0")
    assert 0 < float(request.config.getini("timeout")) <= 900
    from ci_policy import SLOW_TIMEOUT_S

    assert float(request.config.getini("timeout")) < SLOW_TIMEOUT_S <= 3600


def _path_without_slurm(tmp_path: Path) -> str:
    """A PATH with the shell tools .ci/slurm.sh needs up to its package check, and no apt-get,
    slurmctld or munged: a machine where the SLURM stage cannot run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "hostname", "id", "cat", "readlink", "rm"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("ci, rc, said", [("true", 1, "FAILED: cannot run the SLURM stage under CI=true"),
                                           ("", 0, "SKIPPED")])
def test_slurm_stage_that_cannot_run_fails_under_ci(tmp_path, ci, rc, said):
    env = {"PATH": _path_without_slurm(tmp_path), "CI": ci, "HOME": str(tmp_path),
           "CI_SLURM_STATE": str(tmp_path / "state")}
    r = subprocess.run([shutil.which("bash"), str(REPO / ".ci" / "slurm.sh")], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == rc, r.stdout + r.stderr
    assert said in r.stdout and "slurm-wlm" in r.stdout
    assert not (tmp_path / "state").exists()  # nothing was started


def test_ci_run_makes_the_slurm_stage_and_skips_count():
    text = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in text and "export CI=true" in text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    # The SLURM stage runs after the tests, unguarded (no `|| true`), so its failure fails CI.
    assert lines[-1] == "bash .ci/slurm.sh"
    assert lines.index("python -m pytest") < lines.index("bash .ci/slurm.sh")
