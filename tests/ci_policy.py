"""What CI does with skips and how long a test may run (loaded by conftest.py).

Under ``CI=true`` (``.ci/run`` sets it) a skipped test is an error, unless its test file lists it in
``CI_ALLOWED_SKIPS = {"test_name": "why a skip is acceptable in CI"}``. Keep those lists short: a
skip that only means "a tool is missing" is a CI that did not install it.

Every test has a time limit (pytest-timeout): ``timeout`` in pyproject.toml for unit tests,
``SLOW_TIMEOUT_S`` for tests marked ``slow`` (they may build the demo workflow first). A test of
its own can still set ``@pytest.mark.timeout(N)``.
"""

from __future__ import annotations

import os

import pytest

SLOW_TIMEOUT_S = 2400


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _allowed(module, name: str) -> bool:
    allowed = getattr(module, "CI_ALLOWED_SKIPS", {}) or {}
    return name.split("[")[0] in allowed


def _refuse(report, where: str, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} was skipped under CI=true ({reason}). Fix the cause in CI, or list the "
                       f"test in its file's CI_ALLOWED_SKIPS with the reason a skip is acceptable.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (in_ci() and report.skipped and not hasattr(report, "wasxfail")
            and not _allowed(getattr(item, "module", None), item.name)):
        _refuse(report, item.nodeid, _skip_reason(report.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole file skipped at import (``pytest.importorskip`` at module level)."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and isinstance(collector, pytest.Module):
        _refuse(report, collector.nodeid, _skip_reason(report.longrepr))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
