"""Every registered family passes the shared check suite, and the registry matches the YAMLs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import testing
from benchmark.errors import ConfigError
from benchmark.models import Family, all_families, get_family
from benchmark.paths import search_spaces_dir

FAMILIES = all_families()


@pytest.fixture(scope="module")
def problems() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generated problems by input kind, made on first use."""
    return {}


def _cases() -> list:
    cases = []
    for name in FAMILIES:
        for check in testing.CHECKS:
            reason = testing.EXPECTED_FAILURES.get((name, check.__name__))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(name, check, marks=marks, id=f"{name}-{check.__name__}"))
    return cases


@pytest.mark.parametrize(("name", "check"), _cases())
def test_family_passes_check(name: str, check: testing.Check, problems) -> None:
    family = FAMILIES[name]
    reason = family.skip_reason()
    if reason:
        pytest.skip(reason)
    kind = family.input_kind
    if kind not in problems:
        problems[kind] = testing.make_problem(kind)
    check(family, *problems[kind])


def test_the_checks_run_on_at_least_one_family() -> None:
    assert FAMILIES and testing.CHECKS, "discovery found no family (or no check): nothing ran"


def test_registry_and_search_spaces_match_both_ways() -> None:
    files = {p.stem for p in search_spaces_dir().glob("*.yaml")}
    assert set(FAMILIES) - files == set(), "families without search_spaces/<name>.yaml"
    assert files - set(FAMILIES) == set(), "search spaces without a family module"


def test_every_search_space_says_why_in_a_comment() -> None:
    for path in sorted(search_spaces_dir().glob("*.yaml")):
        assert path.read_text(encoding="utf-8").startswith("#"), f"{path.name}: no comment line"


def test_families_are_registered_under_their_name() -> None:
    for name, family in FAMILIES.items():
        assert isinstance(family, Family) and family.name == name
        assert family.input_kind in testing.PROBLEMS, f"{name}: no generated problem"
        assert family.description and "\n" not in family.description
        assert get_family(name) is family


def test_get_family_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="nope") as info:
        get_family("nope")
    for name in FAMILIES:
        assert name in str(info.value)


def test_unknown_param_is_a_config_error_naming_the_family() -> None:
    with pytest.raises(ConfigError, match=r"svm_rbf.*\['kernel'\]"):
        get_family("svm_rbf").build({"kernel": "linear"}, 0)


@pytest.mark.parametrize("smallest", [1, 2, 3])
def test_svm_calibration_fits_when_a_class_has_fewer_rows_than_its_folds(smallest: int) -> None:
    """A small class of the user's music, or an outer fold of the 115 shared audio clips, must
    not fail every trial; with enough rows nothing changes."""
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from benchmark.models.svm import CALIBRATION, SmallClassCalibration

    X, y = testing.make_tabular_problem(n_samples=60, n_features=6, n_classes=4, seed=3)
    keep = np.r_[np.flatnonzero(y != 3), np.flatnonzero(y == 3)[:smallest]]
    X, y = X[keep], y[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "least populated class" warning either
        model = SmallClassCalibration(SVC(), **CALIBRATION).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 4) and np.allclose(proba.sum(axis=1), 1.0)
    # temperature scaling keeps the SVC's own ranking: the argmax is its decision argmax
    svc = model.calibrated_classifiers_[0].estimator
    assert (proba.argmax(axis=1) == svc.decision_function(X).argmax(axis=1)).all()
    if smallest >= 3:
        plain = CalibratedClassifierCV(SVC(), **CALIBRATION).fit(X, y)
        assert np.allclose(plain.predict_proba(X), proba)
