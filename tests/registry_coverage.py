"""A pytest plugin (loaded by ``tests/conftest.py``): a run of the whole suite fails when a
registered model family or feature set was skipped in every test that names it, or is named by
no test at all (the house rule "a family skipped everywhere fails the run", as benchopt does;
docs/contributing.md, "Tests, lint, types").

A test *names* a plugin when its node id (module, test name or parametrize id) holds the
plugin's name as a word of its own: ``svm_rbf`` is named by ``test_models.py::
test_family_passes_check[svm_rbf-check_fit]`` and by ``test_svm_rbf_calibration``, not by
``test_svm_rbf2``. An expected failure (xfail) counts as having run.

The check applies only when the whole suite ran: not with ``-k``, ``-m``, a subset of paths,
deselected tests, ``--collect-only``, or a run stopped early (``-x``, ``--maxfail``), so that
targeted runs keep working.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

__all__ = ["REGISTRIES", "uncovered"]


def _families() -> list[str]:
    from benchmark.models import all_families

    return list(all_families())


def _feature_sets() -> list[str]:
    from benchmark.features import all_feature_sets

    return list(all_feature_sets())


#: the kinds of plugin the check covers, and how to list the registered names of each
REGISTRIES: dict[str, Callable[[], list[str]]] = {
    "family": _families,
    "feature set": _feature_sets,
}


def names(nodeid: str, name: str) -> bool:
    """Whether ``nodeid`` holds ``name`` as a word of its own (letters and digits around it
    end it; ``_``, ``-``, ``[``, ``.`` and ``/`` do not belong to it)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", nodeid) is not None


def uncovered(
    registered: Mapping[str, list[str]], ran: Mapping[str, bool]
) -> list[tuple[str, str, str]]:
    """``(kind, name, why)`` for each registered plugin that no test names, or that every test
    naming it skipped (``why`` then lists where, at most three node ids)."""
    out = []
    for kind, plugin_names in registered.items():
        for name in plugin_names:
            tests = [nodeid for nodeid in ran if names(nodeid, name)]
            if not tests:
                out.append((kind, name, "is named by no test (no node id holds its name)"))
            elif not any(ran[t] for t in tests):
                where = ", ".join(tests[:3]) + (
                    f" and {len(tests) - 3} more" if len(tests) > 3 else ""
                )
                out.append((kind, name, f"was skipped in every test that names it: {where}"))
    return out


class _Record:
    """What one session's tests did: node id -> ran (False: skipped), and what was deselected."""

    def __init__(self) -> None:
        self.ran: dict[str, bool] = {}
        self.deselected: list[str] = []

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.extend(item.nodeid for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.ran.setdefault(report.nodeid, False)  # a skip at setup or in the call
        elif report.when == "call" or (report.when == "setup" and report.failed):
            self.ran[report.nodeid] = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not _whole_suite(session, self.deselected):
            return
        registered = {kind: list_names() for kind, list_names in REGISTRIES.items()}
        problems = uncovered(registered, self.ran)
        if not problems:
            return
        lines = [f"registered {kind} {name!r} {why}" for kind, name, why in problems]
        lines.append(
            "every registered family and feature set must run in at least one test: "
            "fix what skips it, or name it in a test that runs"
        )
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("registry coverage", sep="=", red=True, bold=True)
            for line in lines:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Record(), "registry_coverage_record")


def _whole_suite(session: pytest.Session, deselected: list[str]) -> bool:
    config = session.config
    opt = config.option
    if opt.collectonly or opt.keyword or opt.markexpr or deselected:
        return False
    if session.shouldstop or session.shouldfail or getattr(opt, "lf", False):
        return False
    if getattr(opt, "deselect", None) or getattr(opt, "ignore", None):
        return False
    source = config.args_source
    if source in (pytest.Config.ArgsSource.TESTPATHS, pytest.Config.ArgsSource.INVOCATION_DIR):
        return True
    # explicit paths: only the test folders themselves (or the root) count as the whole suite
    whole = {config.rootpath.resolve()}
    whole |= {(config.rootpath / p).resolve() for p in config.getini("testpaths")}
    return all(Path(arg).resolve() in whole for arg in config.args)
