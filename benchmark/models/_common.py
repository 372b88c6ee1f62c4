"""Helpers shared by the family modules: the pipeline shape and parameter checking."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.errors import ConfigError

__all__ = ["make_pipeline", "take_params"]


def make_pipeline(model: BaseEstimator, *, scale: bool) -> Pipeline:
    """``[scale →] model`` as a Pipeline, so scaling is fit on the training folds only.

    Every family returns this shape (the model is always the step named ``"model"``), so the
    harness can reach the fitted model the same way whatever the family.
    """
    steps: list[tuple[str, BaseEstimator]] = [("scale", StandardScaler())] if scale else []
    return Pipeline([*steps, ("model", model)])


def take_params(
    family: str, params: Mapping[str, Any], accepted: Collection[str]
) -> dict[str, Any]:
    """A copy of ``params`` after checking every key is one ``family`` accepts.

    Fails with a :class:`ConfigError` naming the family rather than a TypeError from deep inside
    scikit-learn, and never mutates the caller's mapping (Optuna's params dict).
    """
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"family {family!r} got unknown parameter(s) {unknown}; "
            f"it accepts {sorted(accepted) or 'none'}"
        )
    return dict(params)
