"""No file of the project points to a document it does not contain (users have only the repository)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

SKIP_DIRS = {".git", ".venv", "results", "resources", ".snakemake", "__pycache__", ".pytest_cache", "logs"}
TEXT_SUFFIXES = {".py", ".smk", ".yaml", ".yml", ".md", ".toml", ".html", ".sh", ".txt", ".cfg", ".ini", ".json", ""}

# A Markdown document by name; internal design documents by their stem; the team's shared folder.
MARKDOWN = re.compile(r"[\w./-]*\b[\w-]+\.md\b")
DOC_STEMS = re.compile(r"\b[A-Z]+_REFERENCE\b|\b(?:DESIGN|METHOD|DATA)\s*§")
SHARED = re.compile(r"\.\./shared\b|\bshared/(?:docs|data)\b|parents\[2\]\s*/\s*\"shared\"")


def project_files(repo: Path) -> list[Path]:
    """Tracked and new (not ignored) files, or every file outside build folders without git."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout.splitlines()
        files = [repo / line for line in out]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in repo.rglob("*") if not SKIP_DIRS & set(p.relative_to(repo).parts)]
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES and p.stat().st_size < 2_000_000]


def dangling(repo: Path, path: Path) -> list[str]:
    """``file:line: reference`` for each mention of a document that is not in the repository."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    found = []
    rel = path.relative_to(repo)
    for n, line in enumerate(text.splitlines(), start=1):
        hits = [m.group(0) for m in MARKDOWN.finditer(line)
                if not any((base / m.group(0)).is_file() for base in (path.parent, repo))]
        hits += [m.group(0) for regex in (DOC_STEMS, SHARED) for m in regex.finditer(line)]
        found += [f"{rel}:{n}: {hit}" for hit in dict.fromkeys(hits)]
    return found


def test_no_file_points_to_a_document_the_project_does_not_contain(repo):
    files = project_files(repo)
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".py" for p in files)
    this = Path(__file__).resolve()
    problems = [hit for p in files if p.resolve() != this for hit in dangling(repo, p)]
    assert problems == [], "point to the README (or a file in the repository) instead:\n" + "\n".join(problems)


def test_the_check_finds_each_kind_of_dangling_reference(tmp_path):
    (tmp_path / "README.md").write_text("see README.md\n")
    bad = tmp_path / "mod.py"
    bad.write_text('"""Model (METHOD.md "Model"; METHOD_REFERENCE §1)."""\n# DESIGN §2\n'
                   'X = "../shared/data/x"  # and DATA.md\nMETHODS = 1  # a name, not a document\n')
    hits = dangling(tmp_path, bad)
    assert hits == ["mod.py:1: METHOD.md", "mod.py:1: METHOD_REFERENCE", "mod.py:2: DESIGN §", "mod.py:3: DATA.md",
                    "mod.py:3: ../shared"]
    assert dangling(tmp_path, tmp_path / "README.md") == []
