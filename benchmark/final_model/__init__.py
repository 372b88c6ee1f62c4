"""The model a user gets from a finished benchmark: which pair wins, and its refit on every track.

:mod:`~benchmark.final_model.choice` picks the winner (by an honest k-fold protocol, never the
fault-filtered test split; on the tracks the candidates share); :mod:`~benchmark.final_model.
export` tunes and refits it on all the data and saves it as a
:mod:`~benchmark.inference.saved_model` folder. The package re-exports nothing.
"""
