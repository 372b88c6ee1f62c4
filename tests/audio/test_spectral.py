"""benchmark.audio.spectral against librosa 0.11 on generated audio at several sample rates and
lengths: bit for bit (the MFCC's DCT to float32 rounding), so the features and the spectrogram
pictures computed without librosa are the ones computed with it."""

from __future__ import annotations

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")
import scipy.fft  # noqa: E402
import scipy.signal  # noqa: E402

from benchmark.audio import spectral  # noqa: E402

N_FFT, HOP = 2048, 512
#: (sample rate, seconds): Kaggle's, a user's 44.1 kHz and 16 kHz, and clips not a whole
#: number of hops long
CASES = [(22050, 3.0), (44100, 1.37), (16000, 2.21), (8000, 0.9)]


def music(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonics, a beat and noise (float32 in [-1, 1])."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.2 / k * np.sin(2 * np.pi * 231.0 * k * t) for k in range(1, 5))
    beat = (np.sin(2 * np.pi * 2.0 * t) > 0.95) * rng.standard_normal(t.size) * 0.3
    return np.clip(y + beat + 0.02 * rng.standard_normal(t.size), -1, 1).astype(np.float32)


@pytest.fixture(params=CASES, ids=[f"{sr}Hz-{s}s" for sr, s in CASES])
def clip(request: pytest.FixtureRequest) -> tuple[np.ndarray, int]:
    sr, seconds = request.param
    return music(sr, seconds, seed=sr), sr


def test_windows_and_fast_lengths_are_scipys() -> None:
    for n in (344, 376, 2048, 511):
        np.testing.assert_array_equal(spectral.hann(n), scipy.signal.get_window("hann", n))
    for n in [*range(1, 200), 687, 751, 1023, 4097, 10007]:
        assert spectral.next_fast_len(n) == scipy.fft.next_fast_len(n, real=True), n


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_stft_and_istft_are_librosas(clip: tuple[np.ndarray, int], pad_mode: str) -> None:
    y, _ = clip
    D = spectral.stft(y, N_FFT, HOP, pad_mode)
    want = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode=pad_mode)
    assert D.dtype == want.dtype
    np.testing.assert_array_equal(D, want)
    back = spectral.istft(D * np.float32(0.7), HOP, N_FFT, length=len(y))
    want_back = librosa.istft(D * np.float32(0.7), hop_length=HOP, n_fft=N_FFT, length=len(y))
    assert back.dtype == want_back.dtype
    np.testing.assert_array_equal(back, want_back)


def test_filter_banks_are_librosas(clip: tuple[np.ndarray, int]) -> None:
    _, sr = clip
    np.testing.assert_array_equal(
        spectral.mel_filters(sr, N_FFT), librosa.filters.mel(sr=sr, n_fft=N_FFT)
    )
    for tuning in (0.0, -0.13, 0.31):
        np.testing.assert_array_equal(
            spectral.chroma_filters(sr, N_FFT, tuning),
            librosa.filters.chroma(sr=sr, n_fft=N_FFT, tuning=tuning),
        )


def test_features_are_librosas(clip: tuple[np.ndarray, int]) -> None:
    y, sr = clip
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect")) ** 2
    np.testing.assert_array_equal(
        spectral.chroma_stft(power, sr, tuning=0.12),
        librosa.feature.chroma_stft(S=power, sr=sr, n_fft=N_FFT, hop_length=HOP, tuning=0.12),
    )
    np.testing.assert_array_equal(
        spectral.rms(y, N_FFT, HOP, "reflect"),
        librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP, pad_mode="reflect"),
    )
    mel = spectral.melspectrogram(y, sr, pad_mode="reflect")
    np.testing.assert_array_equal(
        mel, librosa.feature.melspectrogram(y=y, sr=sr, pad_mode="reflect")
    )
    mel_db = spectral.power_to_db(mel)
    np.testing.assert_array_equal(mel_db, librosa.power_to_db(mel))
    np.testing.assert_array_equal(
        spectral.amplitude_to_db(mel), librosa.amplitude_to_db(mel, ref=np.max)
    )
    onset = spectral.onset_strength(mel_db, N_FFT, HOP)
    want_onset = librosa.onset.onset_strength(
        S=mel_db, sr=sr, hop_length=HOP, n_fft=N_FFT, aggregate=np.median
    )
    np.testing.assert_array_equal(onset, want_onset)
    assert (
        spectral.tempo(onset, sr, HOP)
        == librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP)[0]
    )
    got, want = spectral.mfcc(mel_db, 20), librosa.feature.mfcc(S=mel_db, n_mfcc=20)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(want).max())


def test_tempo_and_tuning_on_varied_input() -> None:
    rng = np.random.default_rng(3)
    for sr, n in ((22050, 1293), (44100, 700), (16000, 40)):
        env = np.abs(rng.standard_normal(n)).astype(np.float32)
        env[:: max(2, n // 37)] += 3.0  # a beat
        assert (
            spectral.tempo(env, sr, HOP)
            == librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=HOP)[0]
        )
    freqs = rng.uniform(80, 4000, 500)
    assert spectral.pitch_tuning(freqs) == librosa.pitch_tuning(freqs)
    assert spectral.pitch_tuning(np.zeros(3)) == 0.0


def test_the_spectrogram_pictures_and_the_57_features_are_librosas() -> None:
    """What the feature sets compute with this module: the dB mel picture behind
    ``spectrogram_img`` bit for bit, and the 57 Kaggle features to float32 rounding."""
    from benchmark.features.librosa_features import clip_features, reference_features
    from benchmark.features.spectrogram import _kaggle_mel_db

    y = music(22050, 12.0, seed=5)
    want = librosa.amplitude_to_db(
        librosa.feature.melspectrogram(y=y, sr=22050, pad_mode="reflect"), ref=np.max
    )
    np.testing.assert_array_equal(_kaggle_mel_db(y, 22050), want)
    got, ref = clip_features(y, 22050), reference_features(y, 22050)
    np.testing.assert_array_less(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3), 1e-5)


def test_decoding_resamples_as_librosa_does() -> None:
    from benchmark.audio.decoding import resample

    for orig, target, seconds in ((44100, 22050, 1.3), (48000, 22050, 0.77), (8000, 16000, 1.1)):
        y = music(orig, seconds, seed=orig)
        want = librosa.resample(y, orig_sr=orig, target_sr=target, res_type="soxr_hq")
        got = resample(y, orig, target)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    y = music(22050, 0.5)
    assert resample(y, 22050, 22050) is y


def test_the_musicnn_input_is_librosas() -> None:
    """musicnn's log-mel (16 kHz, n_fft 512, hop 256, 96 bands) computed here, as librosa."""
    import scipy.sparse

    from benchmark.features import _musicnn as mnn

    y = music(16000, 4.3, seed=9)
    D = librosa.stft(y, n_fft=512, hop_length=256)
    basis = scipy.sparse.csr_matrix(librosa.filters.mel(sr=16000, n_fft=512, n_mels=96))
    mel = (basis @ (D.real**2 + D.imag**2).astype(np.float32)).T.astype(np.float16)
    want = np.log10(10000 * mel.astype(np.float32) + 1).astype(np.float32)
    np.testing.assert_array_equal(mnn.log_mel(y), want)
