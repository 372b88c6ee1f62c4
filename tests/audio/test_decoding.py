"""Decoding and clip validation (benchmark/audio/decoding.py) and the compiled HPSS kernels, on
audio the tests write: tones, noise, silence, truncated files and non-audio files with audio
names."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
from helpers import SR, write_clip  # noqa: E402

from benchmark.audio import decoding as audio  # noqa: E402
from benchmark.audio.decoding import (  # noqa: E402
    AudioFileMissing,
    EmptyAudioError,
    NotAudioError,
    SilentAudioError,
    TooShortError,
    load_clip,
    read_audio,
    song_windows,
)
from benchmark.errors import GenrebenchError  # noqa: E402


def tone(seconds: float, freq: float = 440.0, sr: int = SR, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype"),
    [
        ("wav", "WAV", "PCM_16"),
        ("au", "AU", "PCM_16"),
        ("flac", "FLAC", "PCM_16"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_decodes_every_format_to_mono_at_the_target_rate(
    tmp_path: Path, ext: str, fmt: str, subtype: str
) -> None:
    """Stereo 44.1 kHz in → mono 22 050 Hz out, the right length, the tone preserved."""
    sr_in = 44100
    left = tone(2.0, 440.0, sr_in)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / f"clip.{ext}"
    write_clip(path, stereo, sr_in, fmt=fmt, subtype=subtype)
    y = read_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 2 * SR) <= 0.05 * SR  # lossy codecs pad a few ms
    spectrum = np.abs(np.fft.rfft(y[SR // 2 : SR // 2 + SR]))  # 1 s: bins 1 Hz apart
    assert abs(int(np.argmax(spectrum)) - 440) <= 2


def test_first_seconds_offset_and_padding(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    y = np.concatenate([tone(2.0, 220.0), tone(2.0, 880.0)])
    path = tmp_path / "a.wav"
    write_clip(path, y)
    clip = load_clip(path, seconds=3.0)
    assert len(clip.samples) == 3 * SR and clip.n_audio == 3 * SR
    with caplog.at_level(logging.WARNING, logger="benchmark.audio.decoding"):
        padded = load_clip(path, seconds=10.0)
    assert len(padded.samples) == 10 * SR and padded.n_audio == 4 * SR
    assert np.all(padded.samples[4 * SR :] == 0)
    assert "padded with silence" in caplog.text
    late = read_audio(path, offset_s=2.0, duration_s=1.0)
    np.testing.assert_allclose(late, y[2 * SR : 3 * SR], atol=1e-4)


def test_resampling_matches_librosa_load(tmp_path: Path) -> None:
    import librosa

    path = tmp_path / "a.wav"
    write_clip(path, tone(1.5, 330.0, 16000), 16000)
    ours = read_audio(path, 22050)
    theirs, _ = librosa.load(path, sr=22050)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_errors_are_one_line_genrebench_errors(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    write_clip(tmp_path / "silent.wav", np.zeros(3 * SR, np.float32))
    write_clip(tmp_path / "short.wav", tone(0.5))
    write_clip(tmp_path / "noheader.flac", tone(2.0))
    (tmp_path / "noheader.flac").write_bytes((tmp_path / "noheader.flac").read_bytes()[:30])
    cases = {
        "missing.wav": (AudioFileMissing, "no such file"),
        "text.wav": (NotAudioError, "not a readable audio file"),
        "empty.wav": (EmptyAudioError, "empty file (0 bytes)"),
        "silent.wav": (SilentAudioError, "silent"),
        "short.wav": (TooShortError, "only 0.50 s of audio"),
        "noheader.flac": (NotAudioError, "not a readable audio file"),
    }
    for name, (kind, text) in cases.items():
        with pytest.raises(kind) as info:
            load_clip(tmp_path / name)
        msg = str(info.value)
        assert isinstance(info.value, GenrebenchError)
        assert text in msg and name in msg and "\n" not in msg, msg


def test_truncated_file_keeps_the_audio_before_the_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    y = np.clip(0.2 * rng.standard_normal(8 * SR), -0.99, 0.99).astype(np.float32)
    wav, flac = tmp_path / "cut.wav", tmp_path / "cut.flac"
    write_clip(wav, y)
    write_clip(flac, y)
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * 3 * SR])  # header + 3 s of 16-bit samples
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    clip = load_clip(wav, seconds=8.0)
    assert clip.n_audio == 3 * SR
    np.testing.assert_allclose(clip.audio, y[: 3 * SR], atol=1e-4)
    with caplog.at_level(logging.WARNING, logger="benchmark.audio.decoding"):
        half = load_clip(flac, seconds=8.0)
    assert 1 * SR <= half.n_audio < 8 * SR
    assert "truncated" in caplog.text or "padded" in caplog.text


def test_song_windows(tmp_path: Path) -> None:
    y = np.concatenate([tone(12.0, 220.0), np.zeros(10 * SR, np.float32), tone(4.0, 440.0)])
    path = tmp_path / "song.wav"
    write_clip(path, y)
    wins = song_windows(path, seconds=10.0)
    # 0-10 s tone, 10-20 s mostly silence but a 2 s tone: kept; 20-26 s: 6 s >= 1/3: kept
    assert [w.n_audio for w in wins] == [10 * SR, 10 * SR, 6 * SR]
    short = tmp_path / "short_song.wav"
    write_clip(short, tone(4.0))
    assert len(song_windows(short, seconds=30.0)) == 1


def test_audio_extra_missing_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    assert audio.audio_extra_missing() is None
    real = audio.importlib.util.find_spec
    monkeypatch.setattr(
        audio.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "librosa" else real(name, *a),
    )
    assert "genrebench[audio]" in (audio.audio_extra_missing() or "")


# --- kernels ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 200), (3, 40), (2, 9), (1, 1)])
def test_median_rows_equals_scipy_reflect(shape: tuple[int, int]) -> None:
    from scipy.ndimage import median_filter

    from benchmark.audio._kernels import median_rows

    rng = np.random.default_rng(shape[1])
    x = rng.random(shape).astype(np.float32)
    x[:, ::5] = 0.25  # ties
    for k in (31, 5, 1):
        got = median_rows(x, k)
        want = median_filter(x, size=(1, k), mode="reflect")
        np.testing.assert_array_equal(got, want)


def test_harmonic_stft_equals_librosa_softmask() -> None:
    import librosa

    from benchmark.audio._kernels import harmonic_stft

    rng = np.random.default_rng(1)
    D = (rng.standard_normal((30, 40)) + 1j * rng.standard_normal((30, 40))).astype(np.complex64)
    H = rng.random((30, 40)).astype(np.float32)
    P = rng.random((30, 40)).astype(np.float32)
    H[0, :5] = P[0, :5] = 0.0  # both vanish: split evenly
    want = D * librosa.util.softmask(H, P, power=2, split_zeros=True)
    np.testing.assert_allclose(harmonic_stft(D, H, P), want, rtol=1e-5, atol=1e-7)
