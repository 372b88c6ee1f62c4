"""genrebench: an honest AutoML model-comparison benchmark for music genre classification."""

__version__ = "0.1.0"
