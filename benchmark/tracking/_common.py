"""Names and small conversions every part of the MLflow logging shares: tag keys, value limits,
filter quoting."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

TAG_PAIR = "genrebench.pair"
TAG_KIND = "genrebench.kind"
TAG_STUDY = "genrebench.study"
TAG_TRIAL = "genrebench.trial"
TAG_FOLD = "genrebench.fold"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"

#: the prefix of bookkeeping tags (which folds are logged, their status, the search space's
#: digest): MLflow's UI hides every tag starting with ``mlflow.``, so a run's tag table shows
#: only what a person reads
HIDDEN = "mlflow.genrebench."
TAG_SPACE = f"{HIDDEN}search_space_sha"

_MAX_PARAM = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_MAX_TAG = 5000  # below MAX_TAG_VAL_LENGTH (8000)


def _logged_tag(fold: int) -> str:
    """The marker of a fold logged in full (its value: ``<status>:<study>``)."""
    return f"{HIDDEN}fold_{fold}_logged"


def _legacy_logged_tag(fold: int) -> str:
    """The marker as genrebench wrote it before it hid its bookkeeping (a store of an older
    run, resumed: its logged folds are not logged twice)."""
    return f"genrebench.fold_{fold}_logged"


def _status_tag(fold: int) -> str:
    return f"{HIDDEN}fold_{fold}_status"


def _tags(tags: Mapping[str, str]) -> list[Any]:
    """MLflow ``RunTag`` objects (mlflow imported here: only a caller that logs needs it)."""
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in tags.items()]


def _quote(value: str) -> str:
    """A string literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search MLflow for a value holding both quote kinds: {value!r}")


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _param_str(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def started_run(**kwargs: Any) -> Iterator[Any]:
    """``mlflow.start_run(**kwargs)``, ended with the status it earned: FINISHED, KILLED on an
    interrupt (Ctrl-C, SIGTERM made one), FAILED on an error (MLflow's own context manager
    ends an interrupted run FAILED)."""
    import mlflow

    run = mlflow.start_run(**kwargs)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except (KeyboardInterrupt, SystemExit):
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status)
