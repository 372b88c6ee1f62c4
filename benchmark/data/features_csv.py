"""The Kaggle feature CSVs (``features_30_sec.csv``, ``features_3_sec.csv``), read and
validated row by row: a bad cell fails naming the file, row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.manifest import Manifest
from benchmark.data.track_names import track_id_from_name, track_id_in_class
from benchmark.errors import DataError


def read_features_csv(path: Path, manifest: Manifest, *, segmented: bool) -> pd.DataFrame:
    """Read and validate a Kaggle feature CSV.

    Returns a frame with ``track_id``, ``segment`` (segmented files only), ``label`` and the
    feature columns as float64. Raises :class:`DataError` naming the file, column and row of the
    first problem: a missing column, a non-numeric value, an unknown label, a duplicate row.
    """
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty (expected a header and one row per clip)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV: {exc}") from None
    required = [
        *manifest.csv_meta_columns,
        *manifest.csv_feature_columns,
        manifest.csv_label_column,
    ]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path.name}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise DataError(f"{path.name}: has a header but no rows")
    feats = df[manifest.csv_feature_columns].apply(pd.to_numeric, errors="coerce")
    bad = feats.isna() & df[manifest.csv_feature_columns].notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        column = manifest.csv_feature_columns[col]
        raise DataError(
            f"{path.name}: non-numeric value {df[column].iloc[row]!r} in column {column!r} "
            f"at row {row + 2} (file {df['filename'].iloc[row]})"
        )
    if feats.isna().to_numpy().any():
        row, col = np.argwhere(feats.isna().to_numpy())[0]
        raise DataError(
            f"{path.name}: empty value in column {manifest.csv_feature_columns[col]!r} "
            f"at row {row + 2}"
        )
    infinite = ~np.isfinite(feats.to_numpy(dtype="float64"))
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        column = manifest.csv_feature_columns[col]
        raise DataError(
            f"{path.name}: infinite value {df[column].iloc[row]!r} in column {column!r} "
            f"at row {row + 2} (file {df['filename'].iloc[row]})"
        )
    labels = df[manifest.csv_label_column].astype(str).str.strip().to_numpy()
    unknown = sorted(set(labels) - set(manifest.classes)) if manifest.classes else []
    if unknown:
        row = int(np.flatnonzero(labels == unknown[0])[0])
        raise DataError(
            f"{path.name}: unknown genre label {unknown[0]!r} at row {row + 2}; "
            f"known labels: {', '.join(manifest.classes)}"
        )
    ids = []
    for row, name in enumerate(df["filename"].to_numpy()):
        try:
            if manifest.classes is None:
                ids.append(track_id_in_class(str(name).strip(), labels[row], segmented=segmented))
            else:
                ids.append(track_id_from_name(str(name).strip()))
        except DataError as exc:
            raise DataError(f"{path.name}: row {row + 2}: {exc}") from None
    out = pd.DataFrame(
        {
            "track_id": [t for t, _ in ids],
            "label": labels,
        }
    )
    if segmented:
        segs = [s for _, s in ids]
        if any(s is None for s in segs):
            row = next(i for i, s in enumerate(segs) if s is None)
            raise DataError(
                f"{path.name}: row {row + 2} file {df['filename'].iloc[row]!r} has no segment "
                "number (expected genre.NNNNN.K.wav)"
            )
        out["segment"] = np.asarray(segs, dtype=int)
        key = ["track_id", "segment"]
    else:
        key = ["track_id"]
    dup = out.duplicated(key)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{path.name}: duplicate entry {df['filename'].iloc[row]!r} at row {row + 2}"
        )
    genre_from_name = out["track_id"].str.split(".").str[0].to_numpy()
    clash = genre_from_name != labels
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        raise DataError(
            f"{path.name}: row {row + 2} file {df['filename'].iloc[row]!r} is labelled "
            f"{labels[row]!r}, but its name says {genre_from_name[row]!r}"
        )
    return pd.concat([out, feats.astype("float64").reset_index(drop=True)], axis=1)
