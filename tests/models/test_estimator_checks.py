"""scikit-learn's own estimator checks on every registered family's estimator.

``sklearn.utils.estimator_checks`` runs on :func:`benchmark.testing.model_step` (the family's
estimator with its ``fast_params``), one test per check. The checks a family fails by design are
listed with their reason in :data:`benchmark.testing.EXPECTED_FAILURES` and marked
``xfail(strict=True)``: any other failure fails the suite, and so does a listed check that
passes. Checks that scikit-learn's generator leaves out are added: the column-names check (a
DataFrame's reordered columns must be refused) for every 2-D family, and the API checks that
need no data for families whose tags rule out scikit-learn's 2-D data (``cnn2d``). Marks are set
here, not through ``expected_failed_checks``, so ``xfail(strict=True)`` works on scikit-learn
1.6 and 1.7 too (``xfail_strict`` came in 1.8).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import estimator_checks as sk
from sklearn.utils import get_tags

from benchmark import testing
from benchmark.models import all_families

FAMILIES = all_families()

#: scikit-learn's API checks that build and inspect an estimator without fitting it
NO_DATA_CHECKS = (
    sk.check_estimator_cloneable,
    sk.check_estimator_repr,
    sk.check_estimator_tags_renamed,
    sk.check_valid_tag_types,
    sk.check_no_attributes_set_in_init,
    sk.check_parameters_default_constructible,
    sk.check_get_params_invariance,
    sk.check_set_params,
    sk.check_do_not_raise_errors_in_init_or_set_params,
    sk.check_mixin_order,
)


def _check_name(check: Callable[..., Any]) -> str:
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


def _check_id(check: Callable[..., Any]) -> str:
    """The check's name and the keywords it is bound with (``readonly_memmap=True``)."""
    keywords: dict[str, Any] = {}
    while isinstance(check, functools.partial):
        keywords.update(check.keywords)
        check = check.func
    args = ",".join(f"{k}={v}" for k, v in sorted(keywords.items()))
    return f"{check.__name__}({args})" if args else check.__name__


def _generated(name: str) -> Iterator[tuple[Any, Callable[..., Any]]]:
    """``(estimator, check)`` for every check scikit-learn yields for the family."""
    yield from sk.estimator_checks_generator(testing.model_step(FAMILIES[name]))


def _extra(name: str) -> Iterator[tuple[Any, Callable[..., Any]]]:
    """The checks scikit-learn's generator leaves out, by the estimator's input tags."""
    estimator = testing.model_step(FAMILIES[name])
    if get_tags(estimator).input_tags.two_d_array:
        yield estimator, functools.partial(sk.check_dataframe_column_names_consistency, name)
    else:  # the generator yields nothing but the clone check for such an estimator
        for no_data in NO_DATA_CHECKS[1:]:
            yield estimator, functools.partial(no_data, name)


def _cases() -> list[Any]:
    cases = []
    for name, family in FAMILIES.items():
        reason = family.skip_reason()
        if reason:
            cases.append(pytest.param(None, None, marks=pytest.mark.skip(reason=reason), id=name))
            continue
        expected = testing.expected_failures(name)
        for estimator, check in [*_generated(name), *_extra(name)]:
            why = expected.get(_check_name(check))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            cases.append(
                pytest.param(estimator, check, marks=marks, id=f"{name}-{_check_id(check)}")
            )
    return cases


@pytest.mark.parametrize(("estimator", "check"), _cases())
def test_scikit_learn_check(estimator: Any, check: Callable[[Any], None]) -> None:
    with warnings.catch_warnings():
        # the checks feed odd data on purpose (convergence, one-class, degenerate fits): the
        # outcome is the assertion, not the warnings on the way
        warnings.simplefilter("ignore")
        check(estimator)


def test_every_expected_failure_names_a_family_and_a_check_it_runs() -> None:
    """No stale entry: each listed check is one the family runs (ours or scikit-learn's)."""
    ours = {c.__name__ for c in testing.CHECKS}
    for family, check in testing.EXPECTED_FAILURES:
        assert family in FAMILIES, f"{family!r}: no such family"
        if check in ours or FAMILIES[family].skip_reason():
            continue
        runs = {_check_name(c) for _, c in [*_generated(family), *_extra(family)]}
        assert check in runs, f"{family}: {check} is listed but never runs"
        assert testing.EXPECTED_FAILURES[family, check].strip(), f"{family}: {check} has no reason"


def test_lightgbm_refuses_reordered_columns_as_the_other_families_do() -> None:
    """The issue's case, on the family's whole pipeline: a DataFrame with its columns reordered
    raises (it used to predict on the wrong features; 64 % of the predictions changed), as
    for random_forest, the other family without a scaler in front."""
    X, y = testing.make_tabular_problem()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    for name in ("lightgbm", "random_forest"):
        family = FAMILIES[name]
        if family.skip_reason():
            continue
        model = family.build(dict(family.fast_params), 0).fit(frame, y)
        np.testing.assert_array_equal(model.predict(frame), model.predict(frame.to_numpy()))
        with pytest.raises(ValueError, match="Feature names must be in the same order"):
            model.predict(frame[frame.columns[::-1]])
