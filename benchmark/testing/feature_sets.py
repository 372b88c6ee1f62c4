"""The check suite every feature set must pass, shipped in the package (as
:mod:`benchmark.testing.families` is for model families).

Small, descriptively named checks that take a :class:`~benchmark.features.FeatureSet` and
generated data (:class:`FeatureSetData`: small fake GTZAN folders in the Kaggle layout, with both
feature CSVs, the pictures and audio clips) and raise ``AssertionError`` saying what broke. A
model trusts its rows blindly: a column that moves, a NaN, or a segment filed under the wrong
track skews every score without an error, so these are checked before a set is benchmarked.
``tests/features/test_feature_set_checks.py`` runs every check on every registered set; a set
written elsewhere runs them too::

    from benchmark import testing
    data = testing.make_feature_set_data(tmp_path)
    testing.check_feature_set(MySet(seconds=3), data)  # every check, on every input kind

Sets computed from audio are best checked with ``seconds`` equal to the clips' length (3 s by
default), which keeps the suite fast. A check that does not apply to a set (the audio
counterpart's columns, for a set without ``computed_from_audio_by``) returns without asserting.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data import Dataset, load_manifest
from benchmark.features import FeatureMatrix, FeatureSet, get_feature_set
from benchmark.results import FEATURE_CACHE_DIR

__all__ = [
    "FEATURE_SET_CHECKS",
    "FeatureSetCheck",
    "FeatureSetData",
    "check_audio_counterpart_gives_the_same_columns",
    "check_cache_reads_back_what_was_built",
    "check_columns_are_named",
    "check_columns_stable_across_calls",
    "check_columns_stable_across_data",
    "check_equal_clips_give_equal_row_counts",
    "check_feature_set",
    "check_output_is_finite",
    "check_rows_follow_their_clip",
    "check_rows_grouped_by_track",
    "check_same_data_same_values",
    "make_feature_set_data",
]


@dataclass(frozen=True)
class FeatureSetData:
    """The generated data the checks run on (:func:`make_feature_set_data`).

    Attributes:
        first: a few tracks of two genres: both CSVs, pictures and clips of equal length.
        second: other tracks (one more per genre), other content and shorter clips.
        changed: ``first`` with one track, :attr:`changed_track`, given other content in every
            file (:func:`~benchmark.testing.fake_gtzan.rewrite_track`).
        changed_track: the track id whose files differ between ``first`` and ``changed``.
        cache_dir: an empty folder for the feature cache.
    """

    first: Dataset
    second: Dataset
    changed: Dataset
    changed_track: str
    cache_dir: Path


FeatureSetCheck = Callable[[FeatureSet, FeatureSetData], None]


def make_feature_set_data(
    folder: Path,
    *,
    genres: tuple[str, ...] = ("blues", "metal"),
    n_per_genre: int = 2,
    seconds: float = 3.0,
) -> FeatureSetData:
    """Write the checks' data under ``folder``: ``first`` has ``n_per_genre`` tracks of each
    genre with ``seconds``-long clips, ``second`` one more track per genre, another seed and
    clips two thirds as long, ``changed`` is ``first`` with its second track rewritten."""
    from benchmark.testing.fake_gtzan import make_fake_gtzan, rewrite_track

    folder = Path(folder)
    manifest = load_manifest("gtzan")

    def fake(name: str, n: int, length: float, seed: int) -> Path:
        return make_fake_gtzan(
            folder / name,
            genres=genres,
            n_per_genre=n,
            with_audio=True,
            audio_seconds=length,
            seed=seed,
        )

    first = fake("first", n_per_genre, seconds, 0)
    second = fake("second", n_per_genre + 1, seconds * 2 / 3, 1)
    track = f"{genres[0]}.00001" if n_per_genre > 1 else f"{genres[-1]}.00000"
    changed = rewrite_track(shutil.copytree(first, folder / "changed"), track)
    cache = folder / FEATURE_CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    return FeatureSetData(
        first=Dataset(first, manifest),
        second=Dataset(second, manifest),
        changed=Dataset(changed, manifest),
        changed_track=track,
        cache_dir=cache,
    )


# --- helpers -----------------------------------------------------------------------------------
def _rows(fset: FeatureSet, dataset: Dataset, input_kind: str) -> FeatureMatrix:
    """The rows of ``input_kind`` built from the dataset's files (no cache)."""
    return fset.load(dataset, input_kind, None)


def _columns(fm: FeatureMatrix) -> tuple[list[str] | None, tuple[int, ...]]:
    """What a model sees of a row: the column names (as a list) and the shape of one row."""
    names = None if fm.feature_names is None else list(fm.feature_names)
    return names, tuple(fm.X.shape[1:])


def _rows_per_track(fm: FeatureMatrix) -> dict[str, int]:
    tracks, counts = np.unique(fm.row_track, return_counts=True)
    return dict(zip(tracks.tolist(), counts.tolist(), strict=True))


def _audio_counterpart(fset: FeatureSet) -> FeatureSet | None:
    """The set that computes ``fset``'s values from one audio file, as ``genrebench predict``
    picks it: the registered counterpart, with ``fset``'s parameters when it is the set itself
    (Kaggle's CSV parameters mean nothing to librosa)."""
    name = type(fset).computed_from_audio_by
    if name is None:
        return None
    params: dict[str, Any] = dict(fset.params) if name == fset.registered_name() else {}
    return get_feature_set(name, **params)


# --- the checks --------------------------------------------------------------------------------
def check_columns_are_named(fset: FeatureSet, data: FeatureSetData) -> None:
    """Every input kind builds rows; a tabular one is ``(rows, columns)`` and names each column
    once, one name per column; a tensor kind (image, waveform) has rows of one axis or more."""
    for input_kind in fset.input_kinds:
        fm = _rows(fset, data.first, input_kind)
        where = f"{fset.name} ({input_kind})"
        assert isinstance(fm, FeatureMatrix), f"{where}: load gave {type(fm)}, not FeatureMatrix"
        assert len(fm.X) > 0, f"{where}: no rows on {len(data.first.tracks)} tracks"
        if input_kind != "tabular":
            assert fm.X.ndim >= 2, f"{where}: rows of shape {fm.X.shape[1:]}"
            continue
        assert fm.X.ndim == 2, f"{where}: tabular rows are (rows, columns), got {fm.X.shape}"
        names = fm.feature_names
        assert names is not None, f"{where}: tabular rows name their columns (feature_names)"
        assert len(names) == fm.X.shape[1], (
            f"{where}: {len(names)} column names for {fm.X.shape[1]} columns"
        )
        repeated = sorted({n for n in names if names.count(n) > 1})
        assert not repeated, f"{where}: column names given twice: {repeated[:5]}"


def check_columns_stable_across_calls(fset: FeatureSet, data: FeatureSetData) -> None:
    """Two builds on the same data give the same column names, in the same order, and rows of
    the same shape (a model trained on one build predicts rows of the other)."""
    for input_kind in fset.input_kinds:
        one = _columns(_rows(fset, data.first, input_kind))
        two = _columns(_rows(fset, data.first, input_kind))
        assert one == two, (
            f"{fset.name} ({input_kind}): columns change between two calls: {_diff(one, two)}"
        )


def check_columns_stable_across_data(fset: FeatureSet, data: FeatureSetData) -> None:
    """Other tracks, other content and shorter clips give the same column names, order and row
    shape: the columns depend on the set and its parameters only, never on the data (a model
    trained on GTZAN predicts a user's songs)."""
    for input_kind in fset.input_kinds:
        one = _columns(_rows(fset, data.first, input_kind))
        two = _columns(_rows(fset, data.second, input_kind))
        assert one == two, (
            f"{fset.name} ({input_kind}): columns change with the data (first vs second folder, "
            f"{len(data.first.tracks)} vs {len(data.second.tracks)} tracks): {_diff(one, two)}"
        )


def _diff(
    one: tuple[list[str] | None, tuple[int, ...]], two: tuple[list[str] | None, tuple[int, ...]]
) -> str:
    """Where two ``(names, row shape)`` differ, in a few words."""
    (names1, shape1), (names2, shape2) = one, two
    if shape1 != shape2:
        return f"rows of shape {shape1} vs {shape2}"
    if names1 is None or names2 is None:
        return "one names its columns, the other does not"
    if len(names1) != len(names2):
        return f"{len(names1)} vs {len(names2)} names"
    i = next(k for k, (a, b) in enumerate(zip(names1, names2, strict=True)) if a != b)
    return f"column {i} is {names1[i]!r} vs {names2[i]!r}"


def check_output_is_finite(fset: FeatureSet, data: FeatureSetData) -> None:
    """No NaN or infinity in any input kind on either folder (scalers and most models fail on them,
    some silently)."""
    for dataset in (data.first, data.second):
        for input_kind in fset.input_kinds:
            fm = _rows(fset, dataset, input_kind)
            bad = ~np.isfinite(np.asarray(fm.X, dtype=np.float64))
            if not bad.any():
                continue
            rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
            cols = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=0))
            names = fm.feature_names
            shown = [names[c] for c in cols[:5]] if names is not None else cols[:5].tolist()
            raise AssertionError(
                f"{fset.name} ({input_kind}): {int(bad.sum())} NaN/inf value(s) in "
                f"{len(rows)} row(s) "
                f"of {dataset.root.name}, tracks {sorted(set(fm.row_track[rows]))[:5]}, "
                f"columns {shown}"
            )


def check_same_data_same_values(fset: FeatureSet, data: FeatureSetData) -> None:
    """Two builds on the same data give identical rows, track ids and coverage (one seed makes
    one result)."""
    for input_kind in fset.input_kinds:
        one, two = _rows(fset, data.first, input_kind), _rows(fset, data.first, input_kind)
        where = f"{fset.name} ({input_kind})"
        np.testing.assert_array_equal(one.row_track, two.row_track, err_msg=f"{where}: tracks")
        np.testing.assert_array_equal(
            one.X, two.X, err_msg=f"{where}: two builds on the same data give other values"
        )
        assert one.missing == two.missing, f"{where}: missing {one.missing} vs {two.missing}"


def check_rows_grouped_by_track(fset: FeatureSet, data: FeatureSetData) -> None:
    """Every row carries the id of a track of the dataset; one track's rows are consecutive;
    every track has rows or a reason in ``missing``, never both. Splits keep a track's rows
    together by this id, so a row filed under another track leaks between folds."""
    tracks = set(data.first.tracks["track_id"].astype(str))
    for input_kind in fset.input_kinds:
        fm = _rows(fset, data.first, input_kind)
        where = f"{fset.name} ({input_kind})"
        ids = [str(t) for t in fm.row_track]
        blank = [i for i, t in enumerate(ids) if not t.strip()]
        assert not blank, f"{where}: rows {blank[:5]} have no track id"
        unknown = sorted(set(ids) - tracks)
        assert not unknown, f"{where}: rows of tracks the dataset does not hold: {unknown[:5]}"
        starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
        split = sorted({t for t in ids if sum(ids[i] == t for i in starts) > 1})
        assert not split, f"{where}: the rows of {split[:5]} are not consecutive"
        missing = set(fm.missing or {})
        both = sorted(missing & set(ids))
        assert not both, f"{where}: {both[:5]} have rows and are listed as missing"
        lost = sorted(tracks - set(ids) - missing)
        assert not lost, f"{where}: {lost[:5]} have no rows and no reason in missing"


def check_equal_clips_give_equal_row_counts(fset: FeatureSet, data: FeatureSetData) -> None:
    """On clips of one length (and a CSV with the same number of segments for every clip), every
    track has the same number of rows: a clip-level set one, a segment set as many as the clip
    has segments. A row dropped or doubled on some clips fails here."""
    for input_kind in fset.input_kinds:
        counts = _rows_per_track(_rows(fset, data.first, input_kind))
        assert len(set(counts.values())) == 1, (
            f"{fset.name} ({input_kind}): equal clips give different row counts: {counts}"
        )


def check_rows_follow_their_clip(fset: FeatureSet, data: FeatureSetData) -> None:
    """When one track's files get other content, exactly that track's rows change: each row is
    computed from the clip whose id it carries, so no segment of one clip is filed under
    another (mixed tracks would leak between folds and mislabel rows)."""
    track = data.changed_track
    for input_kind in fset.input_kinds:
        before, after = _rows(fset, data.first, input_kind), _rows(fset, data.changed, input_kind)
        where = f"{fset.name} ({input_kind})"
        np.testing.assert_array_equal(
            before.row_track, after.row_track, err_msg=f"{where}: rows moved when {track} changed"
        )
        mine = before.row_track == track
        assert mine.any(), f"{where}: no rows of {track}, the track changed"
        flat_before = np.asarray(before.X).reshape(len(before.X), -1)
        flat_after = np.asarray(after.X).reshape(len(after.X), -1)
        differs = (flat_before != flat_after).any(axis=1)
        others = sorted(set(before.row_track[differs & ~mine]))
        assert not others, (
            f"{where}: only {track}'s files changed, but rows filed under {others[:5]} changed "
            "too: they hold values of another clip (tracks mixed)"
        )
        same = np.flatnonzero(mine & ~differs)
        assert not len(same), (
            f"{where}: {track}'s files changed, but {len(same)} of its {int(mine.sum())} rows "
            "did not: they hold values of another clip (tracks mixed)"
        )


def check_audio_counterpart_gives_the_same_columns(fset: FeatureSet, data: FeatureSetData) -> None:
    """A set read from Kaggle's files (``computed_from_audio_by``) and its counterpart computed
    from one audio file, as ``genrebench predict`` computes it, give the same column names in the
    same order and rows of the same shape: a model trained on the files predicts songs with
    them. Sets without ``computed_from_audio_by`` have nothing to check."""
    counterpart = _audio_counterpart(fset)
    if counterpart is None:
        return
    tracks = data.first.tracks
    clip = str(tracks["audio_path"].dropna().iloc[0])
    file_rows = getattr(counterpart, "file_rows", None)
    assert callable(file_rows), (
        f"{fset.name}: its counterpart {counterpart.name!r} cannot compute rows from an audio "
        "file (no file_rows)"
    )
    for input_kind in fset.input_kinds:
        read = _rows(fset, data.first, input_kind)
        where = f"{fset.name} ({input_kind}) and {counterpart.name} from audio"
        assert input_kind in counterpart.input_kinds, (
            f"{where}: the counterpart has no {input_kind!r} input_kind"
        )
        computed = np.asarray(file_rows(clip, input_kind))
        names = counterpart.feature_names(input_kind)  # type: ignore[attr-defined]
        one, two = _columns(read), (names, tuple(computed.shape[1:]))
        assert one == two, f"{where}: the columns differ: {_diff(one, two)}"


def check_cache_reads_back_what_was_built(fset: FeatureSet, data: FeatureSetData) -> None:
    """An input kind loaded through the feature cache a second time (read back) equals the first
    load (built): rows, track ids, column names and coverage."""
    for input_kind in fset.input_kinds:
        cache = Path(tempfile.mkdtemp(prefix=f"{fset.registered_name()}-", dir=data.cache_dir))
        built = fset.load(data.first, input_kind, cache)
        where = f"{fset.name} ({input_kind}) from the cache"
        assert any(cache.iterdir()), f"{where}: load wrote nothing to the cache folder"
        read = fset.load(data.first, input_kind, cache)
        np.testing.assert_array_equal(built.X, read.X, err_msg=f"{where}: other values")
        np.testing.assert_array_equal(
            built.row_track, read.row_track, err_msg=f"{where}: other track ids"
        )
        assert built.feature_names == read.feature_names, f"{where}: other column names"
        assert built.missing == read.missing, f"{where}: missing {built.missing} vs {read.missing}"


FEATURE_SET_CHECKS: tuple[FeatureSetCheck, ...] = (
    check_columns_are_named,
    check_columns_stable_across_calls,
    check_columns_stable_across_data,
    check_output_is_finite,
    check_same_data_same_values,
    check_rows_grouped_by_track,
    check_equal_clips_give_equal_row_counts,
    check_rows_follow_their_clip,
    check_audio_counterpart_gives_the_same_columns,
    check_cache_reads_back_what_was_built,
)


def check_feature_set(fset: FeatureSet, data: FeatureSetData) -> None:
    """Run every check of :data:`FEATURE_SET_CHECKS` on ``fset``; the first that fails raises."""
    for check in FEATURE_SET_CHECKS:
        check(fset, data)
