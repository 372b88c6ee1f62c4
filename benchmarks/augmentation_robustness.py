"""Does training-time augmentation make a model robust to how users' files differ?

Protocol: the clips of ``genres_original/`` (the shared copy: 115), the project's artist-grouped
protocol (``artist_kfold``, ``--folds`` 5, no artist on both sides of a fold), repeated with
``--repeats`` split seeds (0, 1, …). In every outer fold a ``--family`` (logreg) on
``--feature-set`` (``librosa_30s``; any audio set, e.g. ``embedding_musicnn``) is tuned on
the outer training part only (``--trials`` Optuna trials, 3
artist-grouped inner folds, as ``genrebench run`` tunes) and refit there, twice:

* (a) on the training clips as found (22 050 Hz FLAC);
* (b) the same clips plus their augmented copies (``augment:`` defaults: resampled through
  16 kHz, 64-kbps MP3, a random gain in ±6 dB; the copies are training rows only).

``--band-limit-hz`` gives both models the set's ``band_limit_hz`` (the docs' 7500: below the
8 kHz that a 16 kHz file can hold), so what a 16 kHz copy lacks is cut from every clip alike.

Each model then scores the outer test clips three ways, each decoded from a file as ``genrebench
predict`` decodes it: as found, resampled to 16 kHz (16-bit FLAC, soxr), and as 64-kbps MP3
(libsndfile/LAME, constant bit rate, compression level 0.6: the measured bit rate is printed).
Printed: accuracy over every test clip of every repeat, the per-fold spread (mean ± standard
deviation of the fold accuracies), the drop against the clean score and augmentation's effect
(b − a), each with a 95 % paired bootstrap interval resampling clips (a clip's repeats
together). Nothing is chosen by these scores: the augmentation settings are the option's
defaults, fixed before this ran.

    python benchmarks/augmentation_robustness.py --data-dir ../shared/datasets/gtzan [--n-jobs 2]

Features go through the feature cache (``--cache-dir``, default ``results/cache``): the first
run extracts 115 clips x 4 (about 3 minutes on 2 cores), reruns take seconds plus the 16 kHz
and MP3 test copies (extracted each time).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import BenchmarkConfig, config_from_dict
from benchmark.data import Dataset
from benchmark.execution.plan import feature_set_of, fold_job
from benchmark.features import FeatureMatrix
from benchmark.features.audio_base import imap_progress
from benchmark.protocols import get_protocol
from benchmark.results import PairKey
from benchmark.tuning.fold import fit_final
from benchmark.tuning.job import derive_seed

MP3_LEVEL = 0.6
CONDITIONS = ("clean", "16 kHz", "64-kbps MP3")


def _config(args: argparse.Namespace, augment: bool) -> BenchmarkConfig:
    params: dict[str, Any] = {"n_jobs": args.n_jobs}
    if args.band_limit_hz is not None:
        params["band_limit_hz"] = args.band_limit_hz
    if augment:
        params["augment"] = True
    return config_from_dict(
        {
            "name": "augmentation_robustness" + ("_aug" if augment else ""),
            "seed": 0,
            "feature_sets": [args.feature_set],
            "feature_params": {args.feature_set: params},
            "families": [args.family],
            "protocols": {"artist_kfold": {"n_folds": args.folds}},
            "inner_folds": 3,
            "n_trials": args.trials,
            "n_jobs": 1,
            "baseline": {"feature_set": args.feature_set, "family": args.family},
            "ensembles": False,
        },
        source="augmentation_robustness",
    )


def _at_16k(path: str, folder: Path) -> str:
    import librosa
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    low = librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=16000, res_type="soxr_hq")
    out = folder / f"{Path(path).stem}.16k.flac"
    sf.write(out, low, 16000, subtype="PCM_16")
    return str(out)


def _as_mp3(path: str, folder: Path) -> str:
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    out = folder / f"{Path(path).stem}.mp3"
    sf.write(
        out,
        np.clip(y.mean(axis=1), -1, 1),
        sr,
        format="MP3",
        compression_level=MP3_LEVEL,
        bitrate_mode="CONSTANT",
    )
    return str(out)


def _rows(job: tuple[Any, str]) -> np.ndarray:
    fset, path = job
    return fset.file_rows(path, "tabular")[0]


def _test_features(
    ds: Dataset, clean: FeatureMatrix, fset: Any, n_jobs: int
) -> tuple[dict[str, np.ndarray], float]:
    """Rows of every clip (in ``clean.row_track`` order) per condition, and the MP3 kbps."""
    import soundfile as sf

    paths = ds.tracks.set_index("track_id")["audio_path"].astype(str)
    files = [paths[t] for t in clean.row_track]
    out = {"clean": clean.X}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        at16 = [_at_16k(p, folder) for p in files]
        mp3 = [_as_mp3(p, folder) for p in files]
        seconds = sum(float(sf.info(p).duration) for p in mp3)
        kbps = sum(Path(p).stat().st_size for p in mp3) * 8 / seconds / 1000
        for name, copies in (("16 kHz", at16), ("64-kbps MP3", mp3)):
            jobs = [(fset, c) for c in copies]
            out[name] = np.stack(list(imap_progress(_rows, jobs, n_jobs=n_jobs, description=name)))
    return out, kbps


def _predict(
    cfg: BenchmarkConfig,
    ds: Dataset,
    fm: FeatureMatrix,
    repeat: int,
    tests: dict[str, np.ndarray],
    storage_dir: str,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Predicted class of every clip (``tests`` row order) per condition, by the model of the
    outer fold holding the clip out; and each clip's fold."""
    proto = get_protocol("artist_kfold", n_folds=cfg.protocols["artist_kfold"]["n_folds"])
    clips = fm.as_found().row_track
    index = {t: i for i, t in enumerate(clips)}
    pred = {c: np.full(len(clips), -1) for c in tests}
    fold_of = np.full(len(clips), -1)
    seed = repeat  # the split seed
    storage = f"sqlite:///{storage_dir}/optuna-{repeat}.db"
    y = ds.labels_of(fm.row_track)
    for s in proto.outer_splits(ds, clips, seed):
        inner = proto.inner_splits(ds, s.train, cfg.inner_folds, derive_seed(seed, s.fold))
        pair = PairKey(cfg.feature_sets[0], cfg.families[0], f"artist_kfold-r{repeat}")
        job = fold_job(
            cfg, pair, s.fold, fm, y, tuple(ds.classes), s.train, np.array([], str), inner, storage
        )
        model, _, _ = fit_final(job)
        rows = np.array([index[t] for t in s.test])
        fold_of[rows] = s.fold
        for c, X in tests.items():
            pred[c][rows] = model.predict(X[rows])
    return pred, fold_of


def _bootstrap(first: np.ndarray, second: np.ndarray, n: int = 2000) -> tuple[float, float]:
    """95 % percentile interval of ``mean(first) - mean(second)``, resampling clips: both are
    ``(repeats, clips)`` hits, and a clip's repeats move together (they are not independent)."""
    a, b = first.mean(axis=0), second.mean(axis=0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def _pt(first: np.ndarray, second: np.ndarray) -> str:
    lo, hi = _bootstrap(first, second)
    d = (first.mean() - second.mean()) * 100
    return f"{d:+.1f} pt [{lo * 100:+.1f}, {hi * 100:+.1f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--cache-dir", default="results/cache", help="feature cache folder")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="artist k-folds with split seeds 0..")
    ap.add_argument("--trials", type=int, default=4, help="Optuna trials per outer fold")
    ap.add_argument("--family", default="logreg", choices=("logreg", "svm_rbf"))
    ap.add_argument(
        "--feature-set",
        default="librosa_30s",
        help="an audio feature set (librosa_30s, embedding_musicnn, ...)",
    )
    ap.add_argument(
        "--band-limit-hz",
        type=float,
        default=None,
        help="the set's band_limit_hz for both models (e.g. 7500, the docs' value; default none)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t0 = time.perf_counter()
    ds = Dataset.open(args.data_dir)
    cache = Path(args.cache_dir)
    models = {"(a) clean training": _config(args, False), "(b) + augmentation": _config(args, True)}
    fsets = {k: feature_set_of(c, args.feature_set) for k, c in models.items()}
    matrices = {k: f.load(ds, "tabular", cache) for k, f in fsets.items()}
    clean = matrices["(a) clean training"]
    assert np.array_equal(matrices["(b) + augmentation"].as_found().row_track, clean.row_track)
    tests, kbps = _test_features(ds, clean, fsets["(a) clean training"], args.n_jobs)
    y = ds.labels_of(clean.row_track)
    protocol = (
        f"artist_kfold {args.folds}-fold x {args.repeats} split seeds, {len(y)} clips, "
        f"{args.family} on {args.feature_set}, {args.trials} trials/fold"
        + (f", band_limit_hz {args.band_limit_hz:g}" if args.band_limit_hz is not None else "")
    )
    print(f"{len(y)} clips; MP3 test copies: {kbps:.1f} kbps measured; protocol: {protocol}\n")
    print(
        f"{'model':<20} {'test audio':<12} {'accuracy':>9} {'fold spread':>16} "
        f"{'drop vs clean [95% CI]':>30}"
    )
    every: dict[str, dict[str, np.ndarray]] = {}
    for label, cfg in models.items():
        fm = matrices[label]
        hits: dict[str, list[np.ndarray]] = {c: [] for c in CONDITIONS}
        folds: dict[str, list[float]] = {c: [] for c in CONDITIONS}
        for r in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                pred, fold_of = _predict(cfg, ds, fm, r, tests, tmp)
            for c in CONDITIONS:
                hit = pred[c] == y
                hits[c].append(hit)
                folds[c] += [float(hit[fold_of == k].mean()) for k in np.unique(fold_of)]
        every[label] = {c: np.stack(h) for c, h in hits.items()}
        base = every[label]["clean"]
        for c in CONDITIONS:
            hit = every[label][c]
            spread = f"{np.mean(folds[c]):.1%} ± {np.std(folds[c]):.1%}"
            drop = "—" if c == "clean" else _pt(base, hit)
            print(f"{label:<20} {c:<12} {hit.mean():>9.1%} {spread:>16} {drop:>30}   ({protocol})")
    a, b = every["(a) clean training"], every["(b) + augmentation"]
    print("\naugmentation's effect, (b) - (a), on the same clips [95% CI]:")
    for c in CONDITIONS:
        print(f"  {c:<12} {_pt(b[c], a[c])}   ({protocol})")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
