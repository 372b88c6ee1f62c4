"""Every registered feature set passes the shared check suite (:mod:`benchmark.testing.
feature_sets`) on generated data, and deliberately broken sets fail the check made for their
fault: the proof that the suite catches a NaN, a column dropped on some clips, segment rows
mixed between tracks, one clip filed under another's id, columns that differ from the audio
counterpart's, a name given twice, columns or values that change between calls, a lost
segment and names the cache does not read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmark import testing
from benchmark.audio.decoding import Clip
from benchmark.data import Dataset
from benchmark.features import FeatureMatrix, FeatureSet, all_feature_sets
from benchmark.features.audio_base import ClipParameters
from benchmark.features.csv import Csv3s, Csv30s
from benchmark.features.librosa_features import FEATURE_NAMES, Librosa30s
from benchmark.testing import feature_sets as fsc

SETS = all_feature_sets()
#: the generated clips' length, and the ``seconds`` the audio sets read (fast, no padding)
SECONDS = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> testing.FeatureSetData:
    return testing.make_feature_set_data(tmp_path_factory.mktemp("feature-checks"), seconds=SECONDS)


def _instance(cls: type[FeatureSet]) -> FeatureSet:
    """The set with its clips read ``SECONDS`` long where it decodes audio."""
    return cls(seconds=SECONDS) if issubclass(cls, ClipParameters) else cls()


@pytest.mark.parametrize(
    ("name", "check"),
    [
        pytest.param(name, check, id=f"{name}-{check.__name__}")
        for name in SETS
        for check in testing.FEATURE_SET_CHECKS
    ],
)
def test_feature_set_passes_check(
    name: str, check: testing.FeatureSetCheck, data: testing.FeatureSetData
) -> None:
    fset = _instance(SETS[name])
    reason = fset.unavailable(data.first)
    if reason:  # musicnn without its weights package
        pytest.skip(f"{name}: {reason}")
    check(fset, data)


def test_the_generated_folders_differ_as_the_checks_need(data: testing.FeatureSetData) -> None:
    first, second = data.first.tracks, data.second.tracks
    assert first["audio_path"].notna().all() and first["image_path"].notna().all()
    assert len(second) > len(first)
    changed = data.changed.tracks.set_index("track_id")
    for column in ("audio_path", "image_path"):
        for tid, path in first.set_index("track_id")[column].items():
            same = Path(path).read_bytes() == Path(changed.loc[tid, column]).read_bytes()
            assert same == (tid != data.changed_track), (column, tid)
    for csv in ("features_30_sec.csv", "features_3_sec.csv"):
        before = (data.first.root / csv).read_bytes().split(b"\r\n")
        after = (data.changed.root / csv).read_bytes().split(b"\r\n")
        pairs = zip(before, after, strict=True)
        differ = {b".".join(a.split(b".")[:2]) for a, b in pairs if a != b}
        assert differ == {data.changed_track.encode()}, (csv, differ)


# --- broken sets: each fails the check made for its fault --------------------------------------
class NanOnShortClips(Librosa30s):
    """A feature that divides by the clip's length past 2.5 s: NaN on shorter clips."""

    name = "broken_nan"

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        rows = super()._clip_rows(clip, input_kind)
        if clip.n_audio < 2.5 * clip.sample_rate:
            rows[:, FEATURE_NAMES.index("tempo")] = np.nan
        return rows


class DropsTempoOnShortClips(Librosa30s):
    """Leaves the tempo out where a clip is too short to hold a beat: a column fewer."""

    name = "broken_columns"

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        rows = super()._clip_rows(clip, input_kind)
        if clip.n_audio < 2.5 * clip.sample_rate:
            rows = np.delete(rows, FEATURE_NAMES.index("tempo"), axis=1)
        return rows


class SegmentMajorRows(Csv3s):
    """Orders the rows by segment, then track, but files them by track, then segment: each
    track's rows hold the same segment of ten different clips."""

    name = "broken_mixed"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        n_tracks = len(fm.tracks)
        X = fm.X.reshape(n_tracks, -1, fm.X.shape[1]).transpose(1, 0, 2).reshape(fm.X.shape)
        return replace(fm, X=X)


class SharedTrackId(Csv30s):
    """Files the second clip's row under the first clip's id (an off-by-one in the ids)."""

    name = "broken_ids"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        ids = fm.row_track.copy()
        ids[1] = ids[0]
        return replace(fm, row_track=ids)


class ReorderedCsv(Csv30s):
    """Reads Kaggle's columns in reverse order: librosa_30s, which predict computes the values
    from, gives them in Kaggle's order."""

    name = "broken_counterpart"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        return replace(fm, X=fm.X[:, ::-1], feature_names=fm.feature_names[::-1])


class RepeatedName(Csv30s):
    """Names the tempo column like the one before it (a copy-paste slip in a list of names)."""

    name = "broken_names"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        names = list(fm.feature_names or [])
        names[FEATURE_NAMES.index("tempo")] = names[FEATURE_NAMES.index("tempo") - 1]
        return replace(fm, feature_names=names)


class ShuffledColumns(Csv30s):
    """Orders its columns by an unseeded draw: each call another order."""

    name = "broken_order"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        order = np.random.default_rng().permutation(fm.X.shape[1])
        return replace(fm, X=fm.X[:, order], feature_names=[fm.feature_names[i] for i in order])


class UnseededNoise(Csv30s):
    """Adds noise from an unseeded generator: two builds, two results."""

    name = "broken_noise"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        return replace(fm, X=fm.X + np.random.default_rng().normal(size=fm.X.shape))


class LastSegmentLost(Csv3s):
    """Loses the last segment of the first track (an off-by-one at a track's end)."""

    name = "broken_count"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        drop = np.flatnonzero(fm.row_track == fm.row_track[0])[-1]
        return replace(fm, X=np.delete(fm.X, drop, 0), row_track=np.delete(fm.row_track, drop))


class TupleNames(Csv30s):
    """Gives its column names as a tuple, which the cache reads back as a list."""

    name = "broken_cache"

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        fm = super().build(dataset, input_kind)
        return replace(fm, feature_names=tuple(fm.feature_names or ()))


#: each broken set, the check made for its fault, and what that check's message says
BROKEN: list[tuple[FeatureSet, testing.FeatureSetCheck, str]] = [
    (NanOnShortClips(seconds=SECONDS), fsc.check_output_is_finite, "NaN/inf value"),
    (
        DropsTempoOnShortClips(seconds=SECONDS),
        fsc.check_columns_stable_across_data,
        r"columns change with the data .*rows of shape \(57,\) vs \(56,\)",
    ),
    (SegmentMajorRows(), fsc.check_rows_follow_their_clip, "tracks mixed"),
    (SharedTrackId(), fsc.check_rows_grouped_by_track, "no rows and no reason in missing"),
    (
        ReorderedCsv(),
        fsc.check_audio_counterpart_gives_the_same_columns,
        "the columns differ: column 0 is 'mfcc20_var' vs 'chroma_stft_mean'",
    ),
    (RepeatedName(), fsc.check_columns_are_named, r"given twice: \['perceptr_var'\]"),
    (ShuffledColumns(), fsc.check_columns_stable_across_calls, "change between two calls"),
    (UnseededNoise(), fsc.check_same_data_same_values, "same data give other values"),
    (
        LastSegmentLost(),
        fsc.check_equal_clips_give_equal_row_counts,
        r"equal clips give different row counts: \{'blues.00000': 9, 'blues.00001': 10",
    ),
    (TupleNames(), fsc.check_cache_reads_back_what_was_built, "other column names"),
]


@pytest.mark.parametrize(
    ("broken", "check", "message"), BROKEN, ids=[f"{b.name}-{c.__name__}" for b, c, _ in BROKEN]
)
def test_a_broken_set_fails_its_check_and_the_suite(
    broken: FeatureSet, check: testing.FeatureSetCheck, message: str, data: testing.FeatureSetData
) -> None:
    with pytest.raises(AssertionError, match=message):
        check(broken, data)
    with pytest.raises(AssertionError):
        testing.check_feature_set(broken, data)


def test_every_check_is_shown_to_fail_and_is_exported() -> None:
    """A check no broken set fails could never fail: each one has its broken set above."""
    proven = {check.__name__ for _, check, _ in BROKEN}
    names = [check.__name__ for check in testing.FEATURE_SET_CHECKS]
    assert sorted(proven) == sorted(names), f"no broken set for {sorted(set(names) - proven)}"
    for name in names:
        assert getattr(testing, name) is getattr(fsc, name) and getattr(fsc, name).__doc__
