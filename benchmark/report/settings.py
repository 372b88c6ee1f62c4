"""What every number on the page is computed with, and the outside numbers it is drawn against.

The view computes with these settings and the page states them (``data-n-boot``, ``data-alpha``),
so anyone can recompute a number from the files alone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALPHA", "N_BOOT", "REFERENCES", "REFERENCE_NOTE", "Reference"]

#: bootstrap resamples of every interval on the page
N_BOOT = 2000
#: significance level of every verdict (after Holm's adjustment)
ALPHA = 0.05


@dataclass(frozen=True)
class Reference:
    """A number reported elsewhere, drawn as a reference line (never rerun, never tested)."""

    key: str
    label: str
    accuracy: float
    feature_set: str
    detail: str


REFERENCES = (
    Reference(
        "seed_csv_mlp",
        "seed author: CSV MLP ≈ 60 %",
        0.60,
        "csv_30s",
        "5-layer tanh MLP (57→20→20→15→12→10) on features_30_sec.csv; rerun here as the "
        "baseline family seed_mlp under every protocol",
    ),
    Reference(
        "seed_cnn",
        "seed author: spectrogram CNN ≈ 40 %",
        0.40,
        "spectrogram_img",
        "a small CNN on the images_original spectrogram PNGs; not a family of this benchmark",
    ),
)

REFERENCE_NOTE = (
    "Reported by the seed author, not measured by this run. They were probably measured on a "
    "random train/test split, that is under the optimistic protocol (stratified_kfold: tracks "
    "of the same artist on both sides), so they are comparable with stratified_kfold numbers "
    "only; under artist_kfold or fault_filtered expect them to be lower (on features_30_sec.csv "
    "a random split gives ≈ 65–76 %, artist-grouped ≈ 49–55 %, fault-filtered ≈ 45–53 %)."
)
