"""A small fake GTZAN folder in the Kaggle layout, for unit tests across the project and for
the feature-set check suite (:mod:`benchmark.testing.feature_sets`), which ships in the package.

:func:`make_fake_gtzan` writes, under a folder of your choice, the files genrebench reads from a
real Kaggle copy, in the same formats, with *learnable* content (class-dependent means plus
noise, so a classifier clearly beats chance):

- ``features_30_sec.csv``: ``filename,length,<57 features>,label``, ``blues.00000.wav``, 661794;
- ``features_3_sec.csv``: ten rows per track, ``blues.00000.0.wav`` … ``.9.wav``, 66149;
- ``images_original/<genre>/<genre>NNNNN.png``: 432x288 RGBA magma pictures in white margins,
  drawn like Kaggle's (see :func:`write_png`), bright in a genre-specific frequency band;
- ``metadata/GTZANindex.txt``: ``clip ::: artist ::: title`` (latin-1), 2–3 tracks per artist,
  no artist in two genres;
- ``splits/{train,valid,test}_filtered.txt``: ``genre/genre.NNNNN.wav``, partitioned by artist,
  about 45/20/35 % of each genre;
- optionally ``genres_original/<genre>/<genre>.NNNNN.wav``: short 16-bit mono tones whose pitch
  depends on the genre.

Usage (the project's tests import it by its short name, ``tests/fake_gtzan.py``)::

    from benchmark.testing.fake_gtzan import make_fake_gtzan
    root = make_fake_gtzan(tmp_path / "gtzan", n_per_genre=6)

or take the session-wide folder from the ``fake_gtzan`` fixture (``tests/conftest.py``); copy it
before modifying it.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image

from benchmark.data import load_manifest

__all__ = [
    "BOX",
    "CANVAS",
    "FEATURE_COLUMNS",
    "GENRES",
    "LENGTH_30S",
    "LENGTH_3S",
    "SHAPE",
    "artist_plan",
    "genre_pitch",
    "genre_tone",
    "magma_rgb",
    "make_fake_gtzan",
    "png_path",
    "rewrite_track",
    "scalar",
    "tone",
    "write_png",
    "write_wav",
]

_MANIFEST = load_manifest("gtzan")
GENRES: tuple[str, ...] = tuple(_MANIFEST.classes)
FEATURE_COLUMNS: tuple[str, ...] = tuple(_MANIFEST.csv_feature_columns)
LENGTH_30S = 661794
LENGTH_3S = 66149
SEGMENTS = 10

# The Kaggle files: 432x288 canvas, plot area rows 36..251 and columns 55..388 (216x334), an
# axes frame one pixel outside it (black on top/left, dark grey on bottom/right).
CANVAS = (288, 432)
BOX = (36, 252, 55, 389)
SHAPE = (BOX[1] - BOX[0], BOX[3] - BOX[2])

_SPLIT_SHARES = {"train": 0.45, "valid": 0.20, "test": 0.35}


# --- pictures ------------------------------------------------------------------------------
def magma_rgb(values: np.ndarray, *, truncate: bool = False) -> np.ndarray:
    """8-bit RGB of scalar values, as matplotlib renders them (rounded, like the Kaggle files)."""
    rgba = matplotlib.colormaps["magma"](values)
    scaled = rgba[..., :3] * 255
    return (np.floor(scaled) if truncate else np.round(scaled)).astype(np.uint8)


def write_png(
    path: Path,
    values: np.ndarray,
    box: tuple[int, int, int, int] = BOX,
    *,
    truncate: bool = False,
    margin_mark: bool = False,
    compress_level: int = 6,
) -> None:
    """A Kaggle-like picture of ``values`` (row 0 = lowest frequency, drawn at the bottom)."""
    top, bottom, left, right = box
    assert values.shape == (bottom - top, right - left)
    img = np.full((*CANVAS, 4), 255, dtype=np.uint8)
    img[top:bottom, left:right, :3] = magma_rgb(values[::-1], truncate=truncate)
    img[top - 1, left - 1 : right + 1, :3] = 0
    img[top - 1 : bottom + 1, left - 1, :3] = 0
    img[bottom, left - 1 : right + 1, :3] = 51
    img[top - 1 : bottom + 1, right, :3] = 51
    if margin_mark:  # a stray tick label in the margin must not widen the box
        img[bottom + 5 : bottom + 12, 100:110, :3] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, mode="RGBA").save(path, compress_level=compress_level)


def scalar(seed: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Known spectrogram: bright at low frequencies (row 0), random texture on top."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.9, 0.1, shape[0])[:, None]
    return np.clip(ramp + rng.uniform(-0.1, 0.1, shape), 0.0, 1.0)


def png_path(root: Path, tid: str) -> Path:
    """Kaggle's image path of track ``blues.00003``: ``images_original/blues/blues00003.png``."""
    genre, num = tid.split(".")
    return Path(root) / "images_original" / genre / f"{genre}{num}.png"


def genre_spectrogram(
    genre_index: int, n_genres: int, rng: np.random.Generator, shape: tuple[int, int] = SHAPE
) -> np.ndarray:
    """A falling ramp (low frequencies brighter) plus a bright band whose height (frequency)
    depends on the genre, plus texture: learnable from pixels and from band statistics."""
    rows = shape[0]
    ramp = np.linspace(0.55, 0.05, rows)[:, None]
    band = np.zeros((rows, 1))
    lo = int(genre_index * rows / n_genres)
    hi = max(lo + 1, int((genre_index + 1) * rows / n_genres))
    band[lo:hi] = 0.4
    # texture in blocks of 4 rows x 8 columns: real-looking enough, and it keeps the PNG
    # encoder fast (runs of equal pixels), which matters for a fixture built in every session
    blocks = rng.uniform(-0.06, 0.06, (-(-rows // 4), -(-shape[1] // 8)))
    texture = np.repeat(np.repeat(blocks, 4, axis=0), 8, axis=1)[:rows, : shape[1]]
    noise = rng.uniform(-0.08, 0.08, (rows, 1)) + texture
    return np.clip(ramp + band + noise, 0.0, 1.0)


# --- artists and the fault-filtered split ----------------------------------------------------
def _artist_sizes(n: int, rng: np.random.Generator) -> list[int]:
    sizes: list[int] = []
    left = n
    while left > 0:
        size = left if left <= 3 else 2 if left == 4 else int(rng.choice([2, 3]))
        sizes.append(size)
        left -= size
    return sizes


def artist_plan(
    genres: Sequence[str], n_per_genre: int, seed: int
) -> tuple[dict[str, str], dict[str, str]]:
    """``(artist of each track id, fault-filtered part of each track id)``.

    Each genre's tracks are cut into consecutive runs of 2–3 tracks by one artist (as in GTZAN,
    where an artist's clips are numbered together); artists are then dealt to train/valid/test,
    each to the part furthest below its share (45/20/35 %), so no artist is in two parts.
    """
    rng = np.random.default_rng([seed, 1])
    artist: dict[str, str] = {}
    part: dict[str, str] = {}
    for genre in genres:
        tracks = [f"{genre}.{i:05d}" for i in range(n_per_genre)]
        groups: list[list[str]] = []
        start = 0
        for k, size in enumerate(_artist_sizes(n_per_genre, rng)):
            name = f"{genre.capitalize()} Artíst {k}"  # non-ASCII: the index is latin-1
            groups.append(tracks[start : start + size])
            artist.update({t: name for t in tracks[start : start + size]})
            start += size
        have = dict.fromkeys(_SPLIT_SHARES, 0)
        for g in rng.permutation(len(groups)):
            deficit = {p: s * n_per_genre - have[p] for p, s in _SPLIT_SHARES.items()}
            best = max(deficit, key=lambda p: deficit[p])
            have[best] += len(groups[g])
            part.update({t: best for t in groups[g]})
    return artist, part


# --- the folder ------------------------------------------------------------------------------
def _features(
    genres: Sequence[str], n_per_genre: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Track features (n_tracks, 57) with class-dependent means, and per-column scales."""
    n_feat = len(FEATURE_COLUMNS)
    scale = 10.0 ** rng.uniform(-3, 5, n_feat)  # real columns span ~1e-4 .. 1e6
    centres = rng.normal(0.0, 1.0, (len(genres), n_feat))
    noise = rng.normal(0.0, 0.8, (len(genres) * n_per_genre, n_feat))
    z = np.repeat(centres, n_per_genre, axis=0) + noise
    return z, scale


def _to_values(z: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Standardised values to the real columns' look: ``*_var`` columns are positive."""
    values = z * scale
    is_var = np.array([c.endswith("_var") for c in FEATURE_COLUMNS])
    values[:, is_var] = np.abs(values[:, is_var]) + scale[is_var] * 0.01
    tempo = FEATURE_COLUMNS.index("tempo")
    values[:, tempo] = 120.0 + 20.0 * z[:, tempo]
    return values


def _write_csv(
    path: Path, names: list[str], length: int, values: np.ndarray, labels: list[str]
) -> None:
    df = pd.DataFrame(values, columns=list(FEATURE_COLUMNS))
    df.insert(0, "length", length)
    df.insert(0, "filename", names)
    df["label"] = labels
    df.to_csv(path, index=False, lineterminator="\r\n")  # Kaggle's file has CRLF endings


def genre_pitch(genre_index: int) -> float:
    """The pitch of the clips of the ``genre_index``-th genre (half an octave apart)."""
    return 110.0 * 2 ** (genre_index / 2)


def tone(freq: float, seconds: float, rng: np.random.Generator, sr: int = 22050) -> np.ndarray:
    """A clip: a tone at ``freq`` over full-band noise, in [-1, 1]."""
    t = np.arange(int(sr * seconds)) / sr
    signal = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.normal(size=t.size)
    return np.clip(signal, -1, 1)


def genre_tone(genres: Sequence[str], genre: str, seconds: float, seed: int) -> np.ndarray:
    """A float32 clip like :func:`make_fake_gtzan` writes for ``genre`` of ``genres``."""
    pitch = genre_pitch(list(genres).index(genre))
    return tone(pitch, seconds, np.random.default_rng(seed)).astype(np.float32)


def write_wav(path: Path, freq: float, seconds: float, rng: np.random.Generator) -> None:
    sr = 22050
    pcm = (tone(freq, seconds, rng, sr) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def make_fake_gtzan(
    root: Path,
    *,
    genres: Sequence[str] = GENRES,
    n_per_genre: int = 8,
    with_csv_30s: bool = True,
    with_csv_3s: bool = True,
    with_images: bool = True,
    with_artists: bool = True,
    with_fault_filtered: bool = True,
    with_audio: bool = False,
    audio_seconds: float = 1.0,
    seed: int = 0,
) -> Path:
    """Write a fake Kaggle-layout GTZAN folder under ``root`` (created) and return ``root``.

    Tracks are ``<genre>.00000`` … ``<genre>.<n_per_genre - 1>`` for each genre. The same
    ``seed`` writes the same bytes. Images take ~10 ms each; the default folder (80 tracks)
    builds in well under a second.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    genres = tuple(genres)
    rng = np.random.default_rng(seed)
    tids = [f"{g}.{i:05d}" for g in genres for i in range(n_per_genre)]
    labels = [t.split(".")[0] for t in tids]
    z, scale = _features(genres, n_per_genre, rng)
    if with_csv_30s:
        _write_csv(
            root / "features_30_sec.csv",
            [f"{t}.wav" for t in tids],
            LENGTH_30S,
            _to_values(z, scale),
            labels,
        )
    if with_csv_3s:
        seg_noise = rng.normal(0.0, 0.3, (len(tids) * SEGMENTS, z.shape[1]))
        seg_z = np.repeat(z, SEGMENTS, axis=0) + seg_noise
        _write_csv(
            root / "features_3_sec.csv",
            [f"{t}.{k}.wav" for t in tids for k in range(SEGMENTS)],
            LENGTH_3S,
            _to_values(seg_z, scale),
            [g for g in labels for _ in range(SEGMENTS)],
        )
    if with_images:
        img_rng = np.random.default_rng([seed, 2])
        for t in tids:
            g = genres.index(t.split(".")[0])
            write_png(
                png_path(root, t),
                genre_spectrogram(g, len(genres), img_rng),
                compress_level=1,
            )
    if with_audio:
        wav_rng = np.random.default_rng([seed, 3])
        for t in tids:
            g = genres.index(t.split(".")[0])
            genre, _ = t.split(".")
            path = root / "genres_original" / genre / f"{t}.wav"
            write_wav(path, genre_pitch(g), audio_seconds, wav_rng)
    artist, part = artist_plan(genres, n_per_genre, seed)
    if with_artists:
        lines = ["## fake GTZANindex (generated by tests/fake_gtzan.py)", "## ## ##"]
        for i, t in enumerate(tids):
            title = "" if i % 7 == 3 else f"Sóng {i}"  # some titles are empty, as in Sturm's
            lines.append(f"{t}.wav ::: {artist[t]} ::: {title}")
        path = root / "metadata" / "GTZANindex.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    if with_fault_filtered:
        (root / "splits").mkdir(exist_ok=True)
        for p in _SPLIT_SHARES:
            entries = [f"{t.split('.')[0]}/{t}.wav" for t in tids if part[t] == p]
            (root / "splits" / f"{p}_filtered.txt").write_text("\n".join(entries) + "\n")
    return root


def rewrite_track(root: Path, track_id: str, seed: int = 7) -> Path:
    """Give one track of a fake folder other content in every file it has: its CSV rows (30 s
    and 3 s: each value x becomes 1.5 x + 0.25), its picture and its clip (another genre's
    band and pitch, the clip's length kept). The other tracks' bytes stay as they were, so what
    a feature set computes for them must not change (``check_rows_follow_their_clip``)."""
    root = Path(root)
    genre, _ = track_id.split(".")
    for name in ("features_30_sec.csv", "features_3_sec.csv"):
        path = root / name
        if not path.exists():
            continue
        df = pd.read_csv(path, dtype=str, keep_default_na=False)  # the others' text untouched
        mine = df["filename"].str.startswith(f"{track_id}.")
        for col in FEATURE_COLUMNS:
            df.loc[mine, col] = [repr(1.5 * float(v) + 0.25) for v in df.loc[mine, col]]
        df.to_csv(path, index=False, lineterminator="\r\n")
    rng = np.random.default_rng(seed)
    other = (GENRES.index(genre) + len(GENRES) // 2) % len(GENRES)
    picture = png_path(root, track_id)
    if picture.exists():
        write_png(picture, genre_spectrogram(other, len(GENRES), rng), compress_level=1)
    clip = root / "genres_original" / genre / f"{track_id}.wav"
    if clip.exists():
        with wave.open(str(clip), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
        write_wav(clip, genre_pitch(other), seconds, rng)
    return root
