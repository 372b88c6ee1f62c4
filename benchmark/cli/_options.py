"""The options the commands share, each declared once.

``run`` and ``worker`` share everything that says which benchmark to run, on which data, where
its results and stores are and how the config is overridden: :func:`run_options` declares those
options and hands the command one frozen :class:`RunArgs`, which builds the config the same way
for both. The worker extends them with its own options (``before_fail_fast``), the run with its
``--n-jobs`` (``after_overrides``); both keep their help texts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="GTZAN folder (Kaggle layout). Default: $GENREBENCH_DATA, then ./data/gtzan.",
)


def config_option(help: str, default: str | None = "quick") -> Decorator:
    return click.option(
        "--config", "config_name", default=default, show_default=default is not None, help=help
    )


def results_root_option(help: str = "Root of the results folders.") -> Decorator:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False),
        default="results",
        show_default=True,
        help=help,
    )


def saved_model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--model`` and ``--results-dir``: which saved model a command scores with (the newest
    ``<results-dir>/*/final_model/`` unless named); shared by predict and evaluate."""
    f = results_root_option("Where to look for the newest final_model/ when --model is not given.")(
        f
    )
    return click.option(
        "--model",
        "model_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Saved model folder (model.json + model.joblib). Default: the newest "
        "<results-dir>/*/final_model/.",
    )(f)


#: predict's and evaluate's extraction processes (None: every core)
jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes decoding files and computing their features (default: every core; 1: all "
    "in this process).",
)


def storage_option(help: str) -> Decorator:
    return click.option("--storage", envvar="GENREBENCH_STORAGE", help=help)


def tracking_uri_option(help: str) -> Decorator:
    return click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help=help)


no_tracking_option = click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")
fail_fast_option = click.option(
    "--fail-fast", is_flag=True, help="Stop at the first failing fold (debugging)."
)


def config_overrides(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that override a config's selection and budgets (``run`` and ``worker``)."""
    for option in reversed(
        (
            click.option("--features", help="Comma-separated feature sets (overrides the config)."),
            click.option("--models", help="Comma-separated model families (overrides the config)."),
            click.option(
                "--protocol", "protocols", help="Comma-separated protocols (overrides the config)."
            ),
            click.option("--trials", type=int, help="Optuna trials per study (0: untuned)."),
            click.option("--timeout", type=float, help="Seconds per study."),
            click.option("--seed", type=int, help="The seed every random choice derives from."),
            click.option(
                "--search-seed",
                type=int,
                help="Another seed for the hyperparameter search alone: the same folds and "
                "models, another search (config key search_seed).",
            ),
            click.option(
                "--no-ensemble",
                is_flag=True,
                help="Skip the ensemble stage over the tuned pairs (config key ensembles).",
            ),
        )
    ):
        fn = option(fn)
    return fn


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass(frozen=True)
class RunArgs:
    """The parsed options of :func:`run_options`, named as on the command line."""

    config_name: str
    data_dir: str | None
    results_dir: str
    features: str | None
    models: str | None
    protocols: str | None
    trials: int | None
    timeout: float | None
    seed: int | None
    search_seed: int | None
    no_ensemble: bool
    storage: str | None
    tracking_uri: str | None
    no_tracking: bool
    fail_fast: bool

    def config(self, **more: Any) -> Any:
        """The config named by ``--config`` with the overrides applied (``more``: a command's
        own overrides, e.g. ``n_jobs``)."""
        from benchmark.config import load_config

        return load_config(self.config_name).with_overrides(
            feature_sets=split_list(self.features),
            families=split_list(self.models),
            protocols=split_list(self.protocols),
            n_trials=self.trials,
            timeout_s=self.timeout,
            seed=self.seed,
            search_seed=self.search_seed,
            ensembles=False if self.no_ensemble else None,
            **more,
        )

    def execution_options(self) -> dict[str, Any]:
        """The keyword arguments ``RunOptions`` and ``WorkerOptions`` share."""
        return {
            "data_dir": self.data_dir,
            "results_root": Path(self.results_dir),
            "storage_url": self.storage,
            "tracking_uri": self.tracking_uri,
            "track": not self.no_tracking,
            "fail_fast": self.fail_fast,
        }


_RUN_ARGS = tuple(f.name for f in fields(RunArgs))


def run_options(
    *,
    config_help: str = "Benchmark config: a name in configs/ or a YAML path.",
    results_help: str = "Root of the results folders.",
    storage_help: str = "Optuna storage URL (default: SQLite file in the results folder).",
    tracking_help: str = "MLflow tracking URI (default: SQLite file in the results folder).",
    after_overrides: Sequence[Decorator] = (),
    before_fail_fast: Sequence[Decorator] = (),
) -> Decorator:
    """The options of ``run`` (and of ``worker``, which extends them), in this order: config,
    data and results folders, config overrides, ``after_overrides``, storage, tracking,
    ``before_fail_fast``, ``--fail-fast``. The command receives a :class:`RunArgs` first, then
    its own options as keywords."""
    options: tuple[Decorator, ...] = (
        config_option(config_help),
        data_dir_option,
        results_root_option(results_help),
        config_overrides,
        *after_overrides,
        storage_option(storage_help),
        tracking_uri_option(tracking_help),
        no_tracking_option,
        *before_fail_fast,
        fail_fast_option,
    )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            args = RunArgs(**{name: kwargs.pop(name) for name in _RUN_ARGS})
            return fn(args, **kwargs)

        decorated: Callable[..., Any] = wrapper
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate
