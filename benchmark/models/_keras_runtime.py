"""Keras's runtime as genrebench sets it up: the backend (JAX unless the user chose one), the
on-disk cache of compiled programs, and seeding that leaves the caller's random streams as they
were. Kept apart from the estimators (:mod:`benchmark.models._keras`), which only use it."""

from __future__ import annotations

import functools
import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["BACKEND", "import_keras", "seeded"]

#: the Keras backend genrebench sets unless the user chose one (README: "Neural families")
BACKEND = "jax"


def import_keras() -> Any:
    """Keras 3, imported on first use with genrebench's backend (unless one is already set)."""
    os.environ.setdefault("KERAS_BACKEND", BACKEND)
    # JAX logs at INFO that it found no TPU/GPU plug-in: noise in a CPU benchmark's log
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    import keras

    _use_compilation_cache(keras)
    return keras


@functools.cache
def _use_compilation_cache(keras: Any) -> None:
    """On JAX, keep compiled XLA programs on disk (``$GENREBENCH_JAX_CACHE``, default
    ``~/.cache/genrebench/jax``; ``off`` disables it; a cache the user configured is kept).

    Every fit builds a new network, and JAX compiles its training step anew (5-10 s for a CNN
    on 2 cores): the inner folds of one trial and the refit compile the very same program, so
    a cache hit turns that into a file read. Compiled code is the same either way, so results
    do not change.
    """
    if keras.backend.backend() != "jax":
        return
    import jax

    path = os.environ.get("GENREBENCH_JAX_CACHE")
    if (path is not None and path.strip().lower() in ("", "0", "off")) or (
        jax.config.jax_compilation_cache_dir
    ):
        return
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        path = os.path.join(base, "genrebench", "jax")
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Keras (and through it Python's and NumPy's global generators) for a build or a fit,
    then put the global Python and NumPy states back, so fitting a model does not change the
    caller's random streams."""
    keras = import_keras()
    py_state, np_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
