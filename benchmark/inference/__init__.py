"""From a saved model and audio files to genres: ``predict``, ``evaluate`` and the served model.

:mod:`~benchmark.inference.saved_model` is the folder format, :mod:`~benchmark.inference.
model_inputs` what a model needs of a file, :mod:`~benchmark.inference.pool` where extraction
runs (a process pool that a crashing decoder cannot take down),
:mod:`~benchmark.inference.pipeline` extraction and batch inference,
:mod:`~benchmark.inference.predict` the thin API the CLI calls,
:mod:`~benchmark.inference.song_evaluation` scores on a user's labelled songs, and
:mod:`~benchmark.inference.serving` the MLflow pyfunc around it all.

The package re-exports nothing: the pool and the pipeline must import no model library, and a
face importing every module would load them all.
"""
