"""genrebench: an honest AutoML model-comparison benchmark for music genre classification."""

from __future__ import annotations

__version__ = "0.1.0"

#: the packages whose versions are written into every run's ``run.json`` and every saved
#: model's ``model.json``: what a number or a pickled model depends on
VERSIONED = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "optuna",
    "mlflow",
    "librosa",
    "keras",
    "jax",
    "jaxlib",
)


def package_versions() -> dict[str, str]:
    """Python's, genrebench's and each :data:`VERSIONED` package's version (``absent`` when it
    is not installed): the one list of what a result or a saved model was made with."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "genrebench": __version__}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out
