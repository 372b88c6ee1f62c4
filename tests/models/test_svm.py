"""The SVM families' calibration: temperature scaling, and its fallback when scipy cannot fit
the temperature (met on musicnn embeddings with a tiny C: every class's votes nearly tie)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.calibration
from scipy.optimize import OptimizeResult

from benchmark.models.svm import build_svc


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = rng.normal(size=(90, 6)) + np.eye(3)[y].repeat(2, axis=1) * 2.0
    return X, y


def test_temperature_calibration_keeps_the_svc_argmax() -> None:
    X, y = _data()
    model = build_svc({"C": 1.0}, 0, kernel="rbf").fit(X, y)
    svc = model[-1].calibrated_classifiers_[0].estimator
    scaled = model[:-1].transform(X)
    assert np.array_equal(model.predict_proba(X).argmax(axis=1), svc.predict(scaled))
    assert not hasattr(model[-1], "calibration_fallback_")


def test_a_temperature_scipy_cannot_fit_falls_back_to_sigmoids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: scipy's search reports the NaN loss it met on the real embeddings
    (the failure is numerically fragile, so it is injected rather than reproduced). The fit
    then completes with Platt sigmoids, says so, and keeps its configured params."""
    real = sklearn.calibration.minimize_scalar
    calls = {"n": 0}

    def nan_once(fun, **kw):  # noqa: ANN001, ANN003, ANN202 - scipy's signature
        calls["n"] += 1
        if calls["n"] == 1:
            return OptimizeResult(success=False, message="NaN result encountered.", x=np.nan)
        return real(fun, **kw)

    monkeypatch.setattr(sklearn.calibration, "minimize_scalar", nan_once)
    X, y = _data()
    model = build_svc({"C": 0.02, "gamma": "scale"}, 0, kernel="rbf").fit(X, y)
    calibration = model[-1]
    assert "NaN result encountered" in calibration.calibration_fallback_
    assert calibration.get_params()["method"] == "temperature"
    proba = model.predict_proba(X)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(proba.argmax(axis=1) == y) > 0.8


def test_other_runtime_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fun, **kw):  # noqa: ANN001, ANN003, ANN202
        raise RuntimeError("something else")

    monkeypatch.setattr(sklearn.calibration, "minimize_scalar", broken)
    X, y = _data()
    with pytest.raises(RuntimeError, match="something else"):
        build_svc({"C": 1.0}, 0, kernel="rbf").fit(X, y)
