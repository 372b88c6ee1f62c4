"""Tuning one outer fold: the unit of work a run sends to its workers.

:mod:`~benchmark.tuning.job` says what a fold job is (its rows, seeds and the honesty check),
:mod:`~benchmark.tuning.objective` what a trial computes and when a pruner stops it,
:mod:`~benchmark.tuning.fold` how a study is tuned, refit and scored into a
:class:`~benchmark.results.FoldOutcome`, :mod:`~benchmark.tuning.trial_budget` which trials run
and count (a killed run's too), :mod:`~benchmark.tuning.sampler_seeding` how each trial is
seeded, :mod:`~benchmark.tuning.search_space` the YAML search spaces, and
:mod:`~benchmark.tuning.study_labels` what optuna-dashboard shows of a study.

The package re-exports nothing: import from the module that defines a name, so that reading
a search space (config checks do) does not load the whole tuning stage.
"""
