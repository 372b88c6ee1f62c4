"""Helpers shared by the family modules: the pipeline shape and parameter checking."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.errors import ConfigError

__all__ = ["add_reduction", "make_pipeline", "take_params"]


def make_pipeline(
    model: BaseEstimator, *, scale: bool, reduce: BaseEstimator | None = None
) -> Pipeline:
    """``[scale →] [reduce →] model`` as a Pipeline, so scaling and any reduction are fit on the
    training folds only.

    Every family returns this shape (the model is always the step named ``"model"``), so the
    harness can reach the fitted model the same way whatever the family. ``reduce`` (a PCA,
    :mod:`benchmark.models._reduction`) is absent unless a config's family variant asks for it.
    """
    steps: list[tuple[str, BaseEstimator]] = [("scale", StandardScaler())] if scale else []
    if reduce is not None:
        steps.append(("reduce", reduce))
    return Pipeline([*steps, ("model", model)])


def add_reduction(pipeline: BaseEstimator, reduce: BaseEstimator) -> Pipeline:
    """``pipeline`` (a ``[scale →] model`` from :func:`make_pipeline`) with ``reduce`` inserted
    before its model, its own steps kept as they are. Any other shape fails: a reduction is
    declared only for families whose builders return this one."""
    names = [name for name, _ in getattr(pipeline, "steps", [])]
    if names not in (["model"], ["scale", "model"]):
        raise ConfigError(
            f"a reduction needs a [scale →] model pipeline, got steps {names or pipeline!r}"
        )
    *before, model = pipeline.steps
    return Pipeline([*before, ("reduce", reduce), model])


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
