"""scikit-learn's parameter contract for the neural families, in three small helpers.

``__init__`` only stores its arguments (:func:`store_params`), and ``fit`` validates them with
one message template ("The 'x' parameter of Y must be .... Got ... instead."), as
scikit-learn's estimators do, so ``clone``, ``set_params`` and Optuna's re-instantiation work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["check_int", "check_number", "store_params"]


def store_params(estimator: BaseEstimator, arguments: Mapping[str, Any]) -> None:
    """``__init__``'s whole job: keep each argument under its own name, untouched
    (``store_params(self, locals())``), as scikit-learn's ``get_params`` expects."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def check_number(
    est: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    value = getattr(est, name)
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        bounds = " and ".join(b for b in (lo, hi) if b) or "finite"
        raise ValueError(
            f"The {name!r} parameter of {type(est).__name__} must be a number {bounds}. "
            f"Got {value!r} instead."
        )


def check_int(est: Any, name: str, low: int) -> None:
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(
            f"The {name!r} parameter of {type(est).__name__} must be an int >= {low}. "
            f"Got {value!r} instead."
        )
