"""The conda environment of the rules installs what pyproject.toml declares."""

import tomllib

import yaml


def test_conda_env_matches_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((repo / "envs/pipeline.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(pip) == sorted(project["dependencies"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert project["requires-python"] == ">=" + python.split("=")[1]



def _pins(repo) -> dict[str, str]:
    pins = {}
    for line in (repo / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not pinned with =="
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    import re

    return _norm(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


def test_every_dependency_and_extra_is_pinned_in_the_constraints(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    pins = _pins(repo)
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    wanted -= {"torch", _norm(project["name"])}  # torch: its own pin, first (README)
    assert sorted(wanted - pins.keys()) == []
    assert "torch" not in pins


def test_this_environment_is_the_constraints(repo):
    """What the tests run with is what constraints.txt says (CI installs with it)."""
    from importlib import metadata

    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    pinned_here = {n: v for n, v in _pins(repo).items() if n in installed}
    assert len(pinned_here) > 0.8 * len(_pins(repo))  # not a different environment altogether
    # The slurm extra lives in CI's SLURM stage venv only (see .ci/slurm.sh).
    differ = {n: (v, installed[n]) for n, v in pinned_here.items() if installed[n] != v}
    assert differ == {}


def test_the_install_commands_use_the_constraints(repo):
    readme = (repo / "README.md").read_text()
    commands = [ln for ln in readme.splitlines() if "pip install" in ln and "-e " in ln]
    assert len(commands) >= 2 and all("-c constraints.txt" in ln for ln in commands), commands
    assert 'pip install -q -c constraints.txt -e ".[test]"' in (repo / ".ci/run").read_text()
    assert '-c "$REPO/constraints.txt"' in (repo / ".ci/slurm.sh").read_text()
