"""Audio in: decoding any file to a clip, its effective bandwidth, and the spectral kernels.

:mod:`~benchmark.audio.decoding` reads and validates a clip at any sample rate and format,
:mod:`~benchmark.audio.band_limit` measures a file's bandwidth against the training audio's,
:mod:`~benchmark.audio.spectral` computes the STFT-based features librosa would (faster), with
:mod:`~benchmark.audio._kernels` its compiled loops. The package re-exports nothing: the feature
sets and the inference workers import the module they need.
"""
