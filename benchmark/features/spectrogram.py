"""Kaggle's mel-spectrogram PNGs turned back into numbers (feature set ``spectrogram_img``).

Kaggle ships one 432x288 RGBA picture per clip: a magma-coloured mel spectrogram drawn by
matplotlib inside white margins and a thin axes frame. Image models should see the spectrogram,
not the picture, so each PNG is cropped to the plot area (margins and frame removed) and every
pixel's colour is mapped back to its position on matplotlib's 256-entry magma colour map: a
scalar intensity in [0, 1]. Row 0 of the result is the lowest frequency band.

Two input kinds: ``"image"`` (``(n, H, W)`` float32, native crop 216x334 on the Kaggle files) for
image families, and ``"tabular"`` (band-pooled statistics of the same arrays) so the classic
families can use the spectrograms too.

Tracks without a PNG (a user folder with only ``genres_original/``, or ``source="audio"``) are
drawn from their audio the way Kaggle drew its pictures (:func:`render_kaggle_spectrogram`), and
the drawing goes through the same crop and colour-map inversion as a PNG. The recipe, found by
comparing with Kaggle's PNGs of the shared clips (``benchmarks/spectrogram_agreement.py``):

* ``librosa.feature.melspectrogram(y, sr)`` of the whole clip with the librosa defaults of the
  time (n_fft 2048, hop 512, 128 mels, power 2, ``reflect`` padding at the edges);
* ``librosa.amplitude_to_db(S, ref=np.max)``: 20·log10 of the *power*, clipped 80 dB below the
  peak (so only 40 dB of power range is visible: Kaggle's pictures are mostly dark);
* ``librosa.display.specshow`` without axis types: a flat ``pcolormesh`` over the bin edges,
  magma, colour limits the data's min and max, no ticks, in a 6x4-inch figure at 72 dpi with the
  subplot geometry of the Jupyter inline backend (bottom 0.125): 432x288 pixels;
* matplotlib 3.1's Agg painted each pixel with the last mesh cell touching it, which is the cell
  at the pixel's upper-right corner; current matplotlib paints the cell at the pixel centre, so
  the mesh is shifted by half a pixel left and down (one extra cell at the right and the top
  keeps the last column and row covered).

This reproduces Kaggle's pictures pixel for pixel on most clips (median r = 1.0 on the shared
clips; the rest differ by a few pixels where float rounding moves a value across a colour step).
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from benchmark.audio.decoding import Clip, load_clip
from benchmark.errors import ConfigError, DataError
from benchmark.features._magma_png import (
    invert_magma,
    plot_box,
    read_spectrogram_png,
    spectrogram_from_rgba,
)
from benchmark.features.audio_base import ClipParameters, audio_missing_reason, imap_progress
from benchmark.features.base import FeatureMatrix, FeatureSet

if TYPE_CHECKING:
    import pandas as pd

    from benchmark.data import Dataset

__all__ = [
    "KAGGLE_SLACK_S",
    "SOURCES",
    "SpectrogramImages",
    "audio_spectrogram",
    "band_statistics",
    "invert_magma",
    "plot_box",
    "read_spectrogram_png",
    "render_kaggle_spectrogram",
    "spectrogram_from_rgba",
]

log = logging.getLogger(__name__)

# Set by SpectrogramImages.load while it runs, so build(..., "tabular") can take the image
# rows from the same on-disk cache instead of decoding every PNG again.
_image_cache_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "spectrogram_image_cache_dir", default=None
)


# --- drawing from audio -----------------------------------------------------------------------
#: Kaggle's figure: matplotlib's default axes in the Jupyter inline backend of 2020
#: (figure.figsize 6x4, figure.dpi 72, figure.subplot.bottom 0.125)
KAGGLE_FIGSIZE = (6.0, 4.0)
KAGGLE_DPI = 72
KAGGLE_SUBPLOT = {"left": 0.125, "right": 0.9, "bottom": 0.125, "top": 0.88}
#: GTZAN clips run a few ms over 30 s and Kaggle drew them whole; audio up to this much longer
#: than the clip length is drawn whole too (those ms decide which frame each pixel shows)
KAGGLE_SLACK_S = 1.0
#: where a track's spectrogram comes from: its PNG when it has one, else its audio ("auto");
#: only PNGs; only audio
SOURCES = ("auto", "png", "audio")


def _kaggle_mel_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Kaggle's mel spectrogram in dB, ``(128, frames)``: librosa defaults of the time (reflect
    padding), then ``amplitude_to_db`` of the power (sic) relative to its peak."""
    from benchmark.audio.spectral import amplitude_to_db, melspectrogram

    y = np.ascontiguousarray(samples, dtype=np.float32)
    return amplitude_to_db(melspectrogram(y, sample_rate, pad_mode="reflect"))


def render_kaggle_spectrogram(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 432x288 RGBA picture Kaggle's ``images_original`` holds for this audio, drawn in
    memory with matplotlib's Agg (no pyplot, no file): ``(288, 432, 4)`` uint8.

    Everything that shapes the picture is set here rather than taken from matplotlib's rc
    settings, so a user's style file cannot change it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import Affine2D

    db = _kaggle_mel_db(samples, sample_rate)
    n_bins, n_frames = db.shape
    fig = Figure(figsize=KAGGLE_FIGSIZE, dpi=KAGGLE_DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(**KAGGLE_SUBPLOT)
    ax = fig.add_subplot(111, facecolor="white")
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
        spine.set_edgecolor("black")
    # one extra cell right and top: after the half-pixel shift it covers the last column/row
    padded = np.pad(db, ((0, 1), (0, 1)), mode="edge")
    mesh = ax.pcolormesh(
        np.arange(n_frames + 2),
        np.arange(n_bins + 2),
        padded,
        cmap="magma",
        vmin=float(db.min()),
        vmax=float(db.max()),
        shading="flat",
        edgecolors="none",
        antialiased=False,
    )
    # matplotlib 3.1 painted a pixel with the cell at its upper-right corner, not its centre
    mesh.set_transform(ax.transData + Affine2D().translate(-0.5, -0.5))
    ax.set_xlim(0, n_frames)
    ax.set_ylim(0, n_bins)
    ax.set_xticks([])
    ax.set_yticks([])
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)


def audio_spectrogram(
    samples: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Audio as the magma indices reading its Kaggle PNG would give: ``(index, box)``, as
    :func:`read_spectrogram_png` (the picture is drawn, then cropped and inverted the same way)."""
    return spectrogram_from_rgba(render_kaggle_spectrogram(samples, sample_rate))


def _kaggle_length(y: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """The audio Kaggle would draw for a clip of ``seconds``: all of it when it is at most
    :data:`KAGGLE_SLACK_S` longer, else its first ``seconds``; shorter audio is padded with
    silence to ``seconds`` so a pixel stays the same length of time."""
    n = int(round(seconds * sample_rate))
    if len(y) > n + KAGGLE_SLACK_S * sample_rate:
        return y[:n]
    if len(y) < n:
        return np.pad(y, (0, n - len(y)))
    return y


def _render_file(
    job: tuple[str, int, float],
) -> tuple[tuple[np.ndarray, tuple[int, int, int, int]] | None, str | None]:
    """Worker: ``((index, box), None)`` for one audio file, or ``(None, reason)`` (never
    raises: one bad clip is reported in ``missing``, as by the audio feature sets)."""
    from benchmark.audio.decoding import AudioError, read_audio, validate_audio

    path, sample_rate, seconds = job
    try:
        y = read_audio(path, sample_rate, duration_s=seconds + KAGGLE_SLACK_S + 1.0 / sample_rate)
        validate_audio(y, sample_rate, path)
        return audio_spectrogram(_kaggle_length(y, sample_rate, seconds), sample_rate), None
    except AudioError as exc:
        text = str(exc)
        return None, text.split(": ", 1)[-1] if text.startswith(path) else text
    except Exception as exc:  # a clip that breaks the drawing must not stop the benchmark
        log.debug("drawing the spectrogram of %s failed", path, exc_info=True)
        return None, f"spectrogram from audio failed: {type(exc).__name__}: {exc}"


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D float array: area average when shrinking (keeps energy, no aliasing),
    bilinear when enlarging."""
    if a.shape == shape:
        return a
    h, w = shape
    shrink = h <= a.shape[0] and w <= a.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    out = Image.fromarray(np.asarray(a, dtype=np.float32), mode="F").resize((w, h), method)
    return np.asarray(out, dtype=np.float32)


# --- the feature set --------------------------------------------------------------------------
class SpectrogramImages(ClipParameters, FeatureSet):
    """Kaggle's mel-spectrogram PNGs as intensity arrays (``"image"``) and band statistics
    (``"tabular"``); tracks without a PNG are drawn from their audio as Kaggle drew them.

    Parameters (all optional, part of the cache key unless said otherwise):
        height, width: resize the crop to this shape (default: the native crop, 216x334 on the
            Kaggle files); one of them alone keeps the other native.
        bands: frequency bands of the tabular rows (default 32).
        source: ``"auto"`` (default: the PNG where there is one, else the audio), ``"png"`` or
            ``"audio"`` (every track drawn from its audio).
        sample_rate (22050), seconds (30): decoding rate and clip length of the audio source;
            audio at most :data:`KAGGLE_SLACK_S` longer is drawn whole, as Kaggle did.
        workers (PNG reading threads), n_jobs (audio drawing processes): not in the cache key.

    :meth:`clip_rows` and :meth:`file_rows` compute the rows of one decoded clip or audio file
    (the interface of :class:`~benchmark.features.audio_base.AudioFeatureSet`), for
    ``genrebench predict``.
    """

    name = "spectrogram_img"
    # drawn from the audio as Kaggle drew its PNGs (render_kaggle_spectrogram)
    computed_from_audio_by = "spectrogram_img"
    input_kinds = ("tabular", "image")
    version = 1
    worker_modules = (
        "benchmark.audio.spectral",
        "PIL.Image",
        "matplotlib.backends.backend_agg",
        "matplotlib.figure",
        "matplotlib.transforms",
    )

    _PARAMS = frozenset(
        {"height", "width", "bands", "workers", "source", "sample_rate", "seconds", "n_jobs"}
    )

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - self._PARAMS)
        if unknown:
            raise ConfigError(
                f"feature set {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self._PARAMS))}"
            )
        for key in ("height", "width", "bands", "workers"):
            value = params.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"feature set {self.name!r}: {key} must be a positive integer")
        if params.get("source", "auto") not in SOURCES:
            raise ConfigError(f"feature set {self.name!r}: source must be one of {SOURCES}")
        # the number of threads/processes does not change the result: not in the cache key
        self.take_clip_params(params)
        self.workers: int = params.pop("workers", None) or min(4, os.cpu_count() or 1)
        super().__init__(**params)

    # --- sources ------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return str(self.params.get("source", "auto"))

    def _png_reason(self, dataset: Dataset) -> str | None:
        folder = dataset.path("images")
        if not folder.is_dir():
            return f"{folder.name}/ is not in {dataset.root}"
        if not any(folder.glob("*/*.png")):
            return f"{folder} holds no <genre>/*.png spectrogram images"
        return None

    def _sources(self, dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(tracks read from their PNG, tracks drawn from their audio)``."""
        tracks = dataset.tracks
        has_png = tracks["image_path"].notna()
        if self.source == "png" or (self.source == "auto" and has_png.all()):
            return tracks[has_png], tracks.iloc[:0]
        audio_ok = tracks["audio_path"].notna() & (audio_missing_reason(dataset) is None)
        if self.source == "audio":
            return tracks.iloc[:0], tracks[audio_ok]
        return tracks[has_png], tracks[~has_png & audio_ok]

    def unavailable(self, dataset: Dataset) -> str | None:
        png = None if self.source == "audio" else self._png_reason(dataset)
        audio = None if self.source == "png" else audio_missing_reason(dataset)
        if self.source == "png" or (self.source == "auto" and png is None):
            return png
        if self.source == "audio" or audio is None:
            return audio
        return f"no PNGs ({png}) and no audio to draw them from ({audio})"

    def input_files(self, dataset: Dataset) -> list[Path]:
        png, audio = self._sources(dataset)
        return [Path(p) for p in png["image_path"]] + [Path(p) for p in audio["audio_path"]]

    def cache_key(self, dataset: Dataset, input_kind: str) -> str:
        """As :meth:`FeatureSet.cache_key`, but ``bands`` (tabular only) does not key the image
        rows, so trying another band count reuses the cached images; and which tracks are
        drawn from audio keys it (a PNG-only build keeps the key it always had)."""
        params = dict(self.params)
        if input_kind == "image":
            params.pop("bands", None)
        _, audio = self._sources(dataset)
        if len(audio):
            drawn = "\n".join(sorted(audio["track_id"].astype(str)))
            params["_from_audio"] = hashlib.sha256(drawn.encode()).hexdigest()[:16]
        keyed = copy.copy(self)
        keyed.params = params
        return FeatureSet.cache_key(keyed, dataset, input_kind)

    def load(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> FeatureMatrix:
        """As :meth:`FeatureSet.load`; a tabular build reads the image rows through the same
        cache, so the PNGs are decoded once for both input kinds."""
        token = _image_cache_dir.set(Path(cache_dir) if cache_dir is not None else None)
        try:
            return super().load(dataset, input_kind, cache_dir)
        finally:
            _image_cache_dir.reset(token)

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        if input_kind == "image":
            return self._build_image(dataset)
        if input_kind == "tabular":
            cache_dir = _image_cache_dir.get()
            image = (
                self.load(dataset, "image", cache_dir)
                if cache_dir is not None
                else self._build_image(dataset)
            )
            return self._tabular(image)
        raise self.no_input_kind(input_kind)

    # --- one clip (genrebench predict) ----------------------------------------------------------
    def clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        """The rows of one decoded clip (:func:`benchmark.audio.decoding.load_clip`): ``(1, H, W)``
        float32 for ``"image"``, ``(1, 3 * bands + 9)`` for ``"tabular"``, the values its
        Kaggle PNG would give."""
        y = _kaggle_length(clip.samples, clip.sample_rate, self.seconds)
        index, _ = audio_spectrogram(y, clip.sample_rate)
        img = self._target(index.astype(np.float32) / 255.0, index.shape)[None]
        if input_kind == "image":
            return img
        if input_kind == "tabular":
            return band_statistics(img, self._bands(img.shape[1]))[0]
        raise self.no_input_kind(input_kind)

    def file_rows(self, path: str | os.PathLike[str], input_kind: str) -> np.ndarray:
        """:meth:`clip_rows` of the first ``seconds`` of an audio file."""
        return self.clip_rows(load_clip(path, self.sample_rate, self.seconds), input_kind)

    def feature_names(self, input_kind: str) -> list[str] | None:
        """Column names of the tabular rows, ``None`` for the image rows."""
        if input_kind == "image":
            return None
        n = int(self.params.get("bands") or 32)
        return band_statistics(np.zeros((1, max(n, 1), 2), dtype=np.float32), n)[1]

    # --- image rows ---------------------------------------------------------------------------
    def _target_shape(self, common: tuple[int, int]) -> tuple[int, int]:
        return (
            int(self.params.get("height") or common[0]),
            int(self.params.get("width") or common[1]),
        )

    def _target(self, img: np.ndarray, common: tuple[int, int]) -> np.ndarray:
        """``img`` resized to the common crop shape, then to ``height`` x ``width``."""
        return np.clip(_resize(_resize(img, common), self._target_shape(common)), 0.0, 1.0)

    def _draw(self, tracks: pd.DataFrame) -> list[tuple[Any, str | None]]:
        """The audio of ``tracks`` drawn and inverted: ``((index, box) or None, reason)``."""
        jobs = [(str(p), self.sample_rate, self.seconds) for p in tracks["audio_path"]]
        if not jobs:
            return []
        if self.n_jobs is not None:
            n_jobs = self.n_jobs if self.n_jobs > 0 else (os.cpu_count() or 1)
        else:
            n_jobs = (os.cpu_count() or 1) if len(jobs) >= 16 else 1
        stream = imap_progress(
            _render_file,
            jobs,
            n_jobs=n_jobs,
            description=f"{self.name}: drawing {len(jobs)} spectrograms from audio",
        )
        return list(stream)

    def _build_image(self, dataset: Dataset) -> FeatureMatrix:
        png, audio = self._sources(dataset)
        if png.empty and audio.empty:
            raise DataError(
                f"{self.name}: no spectrogram images in {dataset.path('images')} and no audio "
                f"to draw them from ({self.unavailable(dataset) or 'no track has either'})"
            )
        paths = png["image_path"].tolist()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            read: list[tuple[Any, str | None]] = [
                (r, None) for r in pool.map(read_spectrogram_png, paths)
            ]
        drawn = self._draw(audio)
        sources = [*paths, *audio["audio_path"].astype(str)]
        tids = [*png["track_id"].astype(str), *audio["track_id"].astype(str)]
        why_prefix = "no image file; audio: " if self.source == "auto" else ""
        missing: dict[str, str] = {}
        got: list[tuple[str, str, np.ndarray, tuple[int, ...]]] = []
        for tid, src, (result, why) in zip(tids, sources, [*read, *drawn], strict=True):
            if result is None:
                log.warning("%s: skipping %s: %s", self.name, tid, why)
                missing[tid] = f"{why_prefix}{why}"
            else:
                got.append((tid, src, result[0], result[1]))
        absent = "no audio file" if self.source == "audio" else "no image file"
        done = set(tids)
        for tid in dataset.tracks["track_id"].astype(str):
            if tid not in done:
                missing[tid] = absent
        if not got:
            first = next(iter(missing.items()), ("", "no tracks"))
            raise DataError(
                f"{self.name}: no spectrogram could be used (e.g. {first[0]}: {first[1]})"
            )
        shapes = Counter(idx.shape for _, _, idx, _ in got)
        common = shapes.most_common(1)[0][0]
        boxes = Counter(box for _, _, _, box in got)
        log.info(
            "%s: %d PNGs, %d drawn from audio, plot box (top, bottom, left, right) %s in %d, "
            "crop %dx%d",
            self.name,
            len(png),
            len(audio),
            boxes.most_common(1)[0][0],
            boxes.most_common(1)[0][1],
            *common,
        )
        order = {tid: i for i, tid in enumerate(dataset.tracks["track_id"].astype(str))}
        got.sort(key=lambda g: order[g[0]])
        X = np.empty((len(got), *self._target_shape(common)), dtype=np.float32)
        for i, (_, src, idx, box) in enumerate(got):
            if idx.shape != common:
                log.warning(
                    "%s: %s has a %dx%d plot area at %s, not the common %dx%d; resized to it",
                    self.name,
                    Path(src).name,
                    *idx.shape,
                    box,
                    *common,
                )
            X[i] = self._target(idx.astype(np.float32) / 255.0, common)
        return FeatureMatrix(
            X=X,
            row_track=np.asarray([g[0] for g in got], dtype=str),
            feature_names=None,
            missing=missing or None,
        )

    # --- tabular rows -------------------------------------------------------------------------
    def _bands(self, height: int) -> int:
        n_bands = int(self.params.get("bands") or 32)
        if n_bands > height:
            raise ConfigError(f"{self.name}: bands={n_bands} exceeds the image height {height}")
        return n_bands

    def _tabular(self, image: FeatureMatrix) -> FeatureMatrix:
        """The image rows summarised per row (in chunks, so no full-size temporaries)."""
        X = image.X
        n_bands = self._bands(X.shape[1])
        parts = [band_statistics(X[i : i + 128], n_bands) for i in range(0, len(X), 128)]
        return FeatureMatrix(
            X=np.concatenate([p[0] for p in parts]),
            row_track=image.row_track,
            feature_names=parts[0][1],
            missing=image.missing,
        )


def band_statistics(X: np.ndarray, n_bands: int = 32) -> tuple[np.ndarray, list[str]]:
    """Tabular summary of ``(n, H, W)`` spectrograms (row 0 = lowest frequency).

    Per frequency band (rows pooled into ``n_bands``): mean and spread over time and the mean
    frame-to-frame change (a rough spectral flux); then a few whole-image statistics. Enough for
    the classic families to pick up timbre and rhythm cues from the spectrograms.
    Returns ``(features (n, 3 * n_bands + 9) float64, names)``.
    """
    X = np.asarray(X, dtype=np.float32)
    n, h, w = X.shape
    edges = np.linspace(0, h, n_bands + 1).round().astype(int)
    sizes = np.diff(edges).astype(np.float32)
    band = np.add.reduceat(X, edges[:-1], axis=1) / sizes[None, :, None]  # (n, bands, w)

    cols: list[np.ndarray] = []
    names: list[str] = []
    band_mean = band.mean(axis=2)
    band_std = band.std(axis=2)
    band_flux = np.abs(np.diff(band, axis=2)).mean(axis=2) if w > 1 else np.zeros_like(band_mean)
    for k in range(n_bands):
        cols += [band_mean[:, k], band_std[:, k], band_flux[:, k]]
        names += [f"band{k:02d}_mean", f"band{k:02d}_std", f"band{k:02d}_flux"]

    flat = X.reshape(n, -1)
    q10, q50, q90 = np.quantile(flat, [0.1, 0.5, 0.9], axis=1)
    frame_energy = X.mean(axis=1)  # (n, w): loudness envelope over time
    pos = (np.arange(n_bands, dtype=np.float32) + 0.5) / n_bands
    weight = band.sum(axis=1)
    # (n, w): intensity-weighted band position per frame, 0 = lowest, 1 = highest
    centroid = (band * pos[None, :, None]).sum(axis=1) / np.maximum(weight, 1e-12)
    whole = {
        "global_mean": flat.mean(axis=1),
        "global_std": flat.std(axis=1),
        "global_p10": q10,
        "global_p50": q50,
        "global_p90": q90,
        "global_flux": np.abs(np.diff(X, axis=2)).mean(axis=(1, 2)) if w > 1 else np.zeros(n),
        "energy_std": frame_energy.std(axis=1),
        "centroid_mean": centroid.mean(axis=1),
        "centroid_std": centroid.std(axis=1),
    }
    cols += list(whole.values())
    names += list(whole)
    return np.column_stack(cols).astype(np.float64), names
