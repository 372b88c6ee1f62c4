"""The session-finish check of ``tests/registry_coverage.py``, run by pytester on tiny generated
suites: a family or feature set skipped in every test that names it, or named by none, fails a
whole-suite run with a line naming it and where; a targeted run is never failed by it."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = """
import registry_coverage

registry_coverage.REGISTRIES.clear()
registry_coverage.REGISTRIES.update(
    {"family": lambda: ["alpha", "beta"], "feature set": lambda: ["gamma_3s"]}
)
pytest_plugins = ["registry_coverage"]
"""

SUITE = """
import pytest

@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_family(name):
    if name == "beta":
        pytest.skip("beta needs a library this machine lacks")

def test_gamma_3s_rows():
    pass

@pytest.mark.slow
def test_beta_is_checked_here_too():
    pytest.skip("and skipped again")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\npythonpath = {TESTS}\nmarkers = slow: a marker to select by\n")
    pytester.makeconftest(CONFTEST)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_a_family_skipped_in_every_test_fails_the_whole_run_naming_it_and_where(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(test_suite=SUITE)
    result = _run(suite)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, skipped=2)  # every test passed or skipped: the check failed
    result.stdout.fnmatch_lines(
        [
            "*registry coverage*",
            "registered family 'beta' was skipped in every test that names it: "
            "test_suite.py::test_family[[]beta[]], test_suite.py::test_beta_is_checked_here_too",
        ]
    )
    assert "'alpha'" not in result.stdout.str() and "'gamma_3s'" not in result.stdout.str()


def test_a_feature_set_named_by_no_test_fails_the_whole_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_suite=SUITE.replace("gamma_3s", "gamma_30s").replace('"beta"]', '"alpha"]')
    )
    result = _run(suite)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "registered feature set 'gamma_3s' is named by no test" in out  # gamma_30s is not it
    assert "registered family 'beta' was skipped in every test" in out


def test_one_run_is_enough_and_an_expected_failure_counts_as_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_suite=SUITE
        + '\n@pytest.mark.xfail(strict=True, reason="beta fails this on purpose")\n'
        + "def test_beta_known_failure():\n    assert False\n"
    )
    result = _run(suite)
    result.assert_outcomes(passed=2, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "registry coverage" not in result.stdout.str()


@pytest.mark.parametrize(
    "args",
    [("-k", "family"), ("-m", "not slow"), ("test_suite.py::test_family",), ("test_suite.py",)],
    ids=["keyword", "marker", "node-id", "a-subset-of-paths"],
)
def test_targeted_runs_are_not_checked(suite: pytest.Pytester, args: tuple[str, ...]) -> None:
    suite.makepyfile(test_suite=SUITE, test_other="def test_more():\n    pass\n")
    result = _run(suite, *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "registry coverage" not in result.stdout.str()


def test_a_run_stopped_early_is_not_checked(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_suite=SUITE + "\ndef test_zz_fails():\n    assert False\n")
    assert "registry coverage" in _run(suite).stdout.str()  # the whole run: checked
    stopped = _run(suite, "-x")
    assert stopped.ret == pytest.ExitCode.TESTS_FAILED  # the failing test's own status
    assert "registry coverage" not in stopped.stdout.str()
