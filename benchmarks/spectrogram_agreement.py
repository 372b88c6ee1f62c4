"""How close are spectrograms drawn from audio to Kaggle's ``images_original`` PNGs?

For every clip with both a PNG and audio (the shared copy: 115 FLAC clips), the feature set
``spectrogram_img`` is computed twice, from the PNG (``source="png"``) and from the audio
(``source="audio"``, Kaggle's recipe: see ``benchmark/features/spectrogram.py``). Prints

* the Pearson correlation of the cropped plot area (image rows) per clip, median and min, and the
  share of pixels with the same colour;
* per tabular summary feature the correlation across clips, median and min over the features;
* the accuracy of a model trained on PNG features (standardised logistic regression on the
  tabular rows, trained on the PNGs of every track without audio) scored on the audio tracks
  once from their PNGs, once from the pictures drawn from their whole clips (as Kaggle drew
  them), and once from strictly their first 30 s (``file_rows``: what ``genrebench predict``
  computes for a file).

    python benchmarks/spectrogram_agreement.py --data-dir ../shared/datasets/gtzan [--n-jobs 2]

Both input kinds go through the feature-set cache (``--cache-dir``), so a second run is quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.data import Dataset
from benchmark.features import FeatureMatrix, get_feature_set


def _rows(fm: FeatureMatrix, tracks: list[str]) -> np.ndarray:
    pos = {t: i for i, t in enumerate(fm.row_track)}
    return fm.X[[pos[t] for t in tracks]]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--cache-dir", default="results/cache", help="feature cache folder")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes drawing from audio")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    ds = Dataset.open(args.data_dir)
    cache = Path(args.cache_dir)
    png_set = get_feature_set("spectrogram_img", source="png")
    audio_set = get_feature_set("spectrogram_img", source="audio", n_jobs=args.n_jobs)
    t0 = time.perf_counter()
    png_img = png_set.load(ds, "image", cache)
    png_tab = png_set.load(ds, "tabular", cache)
    audio_img = audio_set.load(ds, "image", cache)
    audio_tab = audio_set.load(ds, "tabular", cache)
    wall = time.perf_counter() - t0
    both = [t for t in audio_img.row_track if t in set(png_img.row_track)]
    skipped = {t: r for t, r in (audio_img.missing or {}).items() if r != "no audio file"}
    print(
        f"{len(both)} clips with a PNG and audio (features/cache read {wall:.1f} s); "
        f"audio skipped: {skipped or 'none'}\n"
    )
    if len(both) < 3:
        print("too few clips to compare")
        return 1

    a, b = _rows(png_img, both), _rows(audio_img, both)
    r_img = np.array([_pearson(x, y) for x, y in zip(a, b, strict=True)])
    same = np.array([np.mean(np.abs(x - y) < 0.5 / 255) for x, y in zip(a, b, strict=True)])
    worst = np.argsort(r_img)[:3]
    print("image rows (cropped plot area, per clip):")
    print(f"  pixel r        median {np.median(r_img):.4f}  min {np.min(r_img):.4f}")
    print(f"  same colour    median {np.median(same):.4f}  min {np.min(same):.4f}")
    print("  lowest r: " + ", ".join(f"{both[i]} {r_img[i]:.4f}" for i in worst))

    ta, tb = _rows(png_tab, both), _rows(audio_tab, both)
    names = png_tab.feature_names or []
    r_tab = np.array([_pearson(ta[:, j], tb[:, j]) for j in range(ta.shape[1])])
    rel = np.abs(ta - tb) / np.maximum(np.abs(ta), 1e-6)
    low = np.argsort(np.nan_to_num(r_tab, nan=-1.0))[:3]
    print(f"\ntabular rows ({ta.shape[1]} summary features, r across clips):")
    print(f"  feature r      median {np.nanmedian(r_tab):.4f}  min {np.nanmin(r_tab):.4f}")
    print(f"  relative diff  median {np.median(rel):.2e}  p95 {np.quantile(rel, 0.95):.2e}")
    print("  lowest r: " + ", ".join(f"{names[j]} {r_tab[j]:.4f}" for j in low))

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    held = set(both)
    train = [t for t in png_tab.row_track if t not in held]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(_rows(png_tab, train), ds.labels_of(np.asarray(train)))
    y = ds.labels_of(np.asarray(both))
    pred_png, pred_audio = model.predict(ta), model.predict(tb)
    acc_png, acc_audio = float(np.mean(pred_png == y)), float(np.mean(pred_audio == y))
    print(
        f"\nlogistic regression on the tabular rows, trained on {len(train)} PNGs of tracks "
        f"without audio, scored on the {len(both)} audio tracks:"
    )
    print(f"  accuracy from the PNGs        {acc_png:.3f}")
    print(f"  accuracy drawn from audio     {acc_audio:.3f}  (change {acc_audio - acc_png:+.3f})")
    print(f"  same prediction               {np.mean(pred_png == pred_audio):.3f}")

    paths = ds.tracks.set_index("track_id")["audio_path"]
    tc = np.concatenate([audio_set.file_rows(paths[t], "tabular") for t in both])
    r30 = np.array([_pearson(ta[:, j], tc[:, j]) for j in range(ta.shape[1])])
    pred_30 = model.predict(tc)
    acc_30 = float(np.mean(pred_30 == y))
    print(f"  accuracy from the first 30 s  {acc_30:.3f}  (change {acc_30 - acc_png:+.3f})")
    print(f"  same prediction               {np.mean(pred_png == pred_30):.3f}")
    print(
        f"  (first 30 s: tabular feature r median {np.nanmedian(r30):.4f}, "
        f"min {np.nanmin(r30):.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
