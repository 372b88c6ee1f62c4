"""Evaluation protocols (benchmark/protocols/): partitions, leakage, stratification, seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fake_gtzan import GENRES, make_fake_gtzan

from benchmark.data import Dataset, load_manifest
from benchmark.errors import ConfigError
from benchmark.protocols import (
    OuterSplit,
    Protocol,
    all_protocols,
    get_protocol,
    splits_table,
)
from benchmark.protocols.fault_filtered import FaultFilteredProtocol
from benchmark.protocols.kfold import ArtistKFoldProtocol, StratifiedKFoldProtocol

PROTOCOLS = all_protocols()

MANIFEST = load_manifest("gtzan")
# the fake folder has 8 tracks per genre: 4 folds leave 2 per genre in each test part
FAKE_PARAMS = {"stratified_kfold": {"n_folds": 4}, "artist_kfold": {"n_folds": 4}}
KFOLD = ["stratified_kfold", "artist_kfold"]


# --- helpers (independent of the code under test) ---------------------------------------------
def artist_key(dataset: Dataset) -> dict[str, str]:
    """Artist of each track as a person would match names (case and spacing ignored); tracks
    without a known artist are left out (they cannot leak an artist)."""
    t = dataset.tracks
    return {
        tid: " ".join(a.lower().split())
        for tid, a in zip(t["track_id"].to_numpy(), t["artist"].to_numpy(), strict=True)
        if isinstance(a, str)
    }


def assert_no_leak(
    dataset: Dataset, train: np.ndarray, test: np.ndarray, *, by_artist: bool, what: str = ""
) -> None:
    """Fails when a track, or (``by_artist``) an artist, is on both sides of a split."""
    both = set(train) & set(test)
    assert not both, f"{what}: tracks on both sides: {sorted(both)[:5]}"
    assert len(set(train)) == len(train) and len(set(test)) == len(test), f"{what}: repeats"
    if by_artist:
        key = artist_key(dataset)
        shared = {key[t] for t in train if t in key} & {key[t] for t in test if t in key}
        assert not shared, f"{what}: artists on both sides: {sorted(shared)[:5]}"


def by_artist(protocol: Protocol) -> bool:
    return protocol.group_by == "artist"


@pytest.fixture(scope="module")
def fake(fake_gtzan: Path) -> Dataset:
    return Dataset(fake_gtzan, MANIFEST)


def _tracks(ds: Dataset) -> np.ndarray:
    return ds.tracks["track_id"].to_numpy(dtype=str)


# --- outer splits ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", KFOLD)
def test_kfold_test_parts_partition_the_tracks(fake: Dataset, name: str) -> None:
    tracks = _tracks(fake)
    splits = get_protocol(name, **FAKE_PARAMS[name]).outer_splits(fake, tracks, seed=0)
    assert [s.fold for s in splits] == [0, 1, 2, 3]
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested) == sorted(tracks) and len(tested) == len(tracks)
    for s in splits:
        assert sorted(np.concatenate([s.train, s.test])) == sorted(tracks)
        assert len(s.test) > 0


@pytest.mark.parametrize("name", list(PROTOCOLS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_leakage_outer_or_inner(fake: Dataset, name: str, seed: int) -> None:
    protocol = get_protocol(name, **FAKE_PARAMS.get(name, {}))
    for s in protocol.outer_splits(fake, _tracks(fake), seed):
        assert_no_leak(fake, s.train, s.test, by_artist=by_artist(protocol), what=f"fold {s.fold}")
        inner = protocol.inner_splits(fake, s.train, n_splits=3, seed=seed)
        assert len(inner) == 3
        assert sorted(np.concatenate([b for _, b in inner])) == sorted(s.train)
        for k, (a, b) in enumerate(inner):
            assert set(a) | set(b) == set(s.train)
            assert not set(b) & set(s.test) and not set(a) & set(s.test)
            assert_no_leak(
                fake, a, b, by_artist=by_artist(protocol), what=f"fold {s.fold} inner {k}"
            )


def test_leak_check_catches_a_leaky_split(fake: Dataset) -> None:
    """The leakage assertion can fail: random folds over tracks split artists."""
    splits = StratifiedKFoldProtocol(n_folds=4).outer_splits(fake, _tracks(fake), seed=0)
    with pytest.raises(AssertionError, match="artists on both sides"):
        for s in splits:
            assert_no_leak(fake, s.train, s.test, by_artist=True)
    s = splits[0]
    with pytest.raises(AssertionError, match="tracks on both sides"):
        assert_no_leak(fake, s.train, np.append(s.test, s.train[0]), by_artist=False)


def test_artist_spelled_two_ways_stays_on_one_side(fake_gtzan: Path, tmp_path: Path) -> None:
    """Sturm's index spells one artist two ways ("Rage Against the/The Machine")."""
    root = tmp_path / "g"
    shutil.copytree(fake_gtzan, root, ignore=shutil.ignore_patterns("images_original"))
    index = root / "metadata" / "GTZANindex.txt"
    lines = index.read_text(encoding="latin-1").splitlines()
    renamed = []
    for ln in lines:
        parts = ln.split(" ::: ")
        if len(parts) == 3 and parts[0].endswith(("0.wav", "2.wav", "4.wav", "6.wav")):
            parts[1] = parts[1].upper()  # every other track: same artist, other spelling
        renamed.append(" ::: ".join(parts))
    index.write_bytes(("\n".join(renamed) + "\n").encode("latin-1"))
    ds = Dataset(root, MANIFEST)
    assert ds.tracks["artist"].nunique() > len(set(artist_key(ds).values()))
    for seed in range(5):
        for s in ArtistKFoldProtocol(n_folds=4).outer_splits(ds, _tracks(ds), seed):
            assert_no_leak(ds, s.train, s.test, by_artist=True, what=f"seed {seed}")
            for a, b in ArtistKFoldProtocol().inner_splits(ds, s.train, 3, seed):
                assert_no_leak(ds, a, b, by_artist=True, what=f"seed {seed} inner")


def test_stratified_kfold_is_exactly_balanced(fake: Dataset) -> None:
    splits = StratifiedKFoldProtocol(n_folds=4).outer_splits(fake, _tracks(fake), seed=3)
    for s in splits:
        np.testing.assert_array_equal(np.bincount(fake.labels_of(s.test), minlength=10), 2)


def test_artist_kfold_is_roughly_balanced(tmp_path: Path) -> None:
    root = make_fake_gtzan(
        tmp_path / "g",
        n_per_genre=20,
        with_csv_3s=False,
        with_images=False,
        with_fault_filtered=False,
    )
    ds = Dataset(root, MANIFEST)
    for seed in (0, 1):
        splits = ArtistKFoldProtocol(n_folds=5).outer_splits(ds, _tracks(ds), seed)
        for s in splits:
            counts = np.bincount(ds.labels_of(s.test), minlength=10)
            assert abs(len(s.test) - 40) <= 4, [len(x.test) for x in splits]
            # 4 per genre expected; an artist has at most 3 tracks
            assert counts.min() >= 1 and counts.max() <= 7, counts


def test_same_seed_same_splits_other_seed_other_splits(fake: Dataset) -> None:
    tracks = _tracks(fake)
    for name in KFOLD:
        p = get_protocol(name, **FAKE_PARAMS[name])
        a, b, c = (p.outer_splits(fake, tracks, seed) for seed in (7, 7, 8))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.train, y.train)
            np.testing.assert_array_equal(x.test, y.test)
        assert any(set(x.test) != set(y.test) for x, y in zip(a, c, strict=True)), (
            f"{name}: seeds 7 and 8 gave the same folds"
        )
        ia = p.inner_splits(fake, a[0].train, 3, seed=7)
        ib = p.inner_splits(fake, a[0].train, 3, seed=7)
        ic = p.inner_splits(fake, a[0].train, 3, seed=8)
        assert [list(t) for _, t in ia] == [list(t) for _, t in ib]
        assert [set(t) for _, t in ia] != [set(t) for _, t in ic]


def test_fault_filtered_is_train_plus_valid_versus_test(fake: Dataset) -> None:
    tracks = _tracks(fake)
    part = dict(zip(tracks, fake.tracks["ff_split"].to_numpy(), strict=True))
    splits = FaultFilteredProtocol().outer_splits(fake, tracks, seed=0)
    assert len(splits) == 1 and splits[0].fold == 0
    (s,) = splits
    assert sorted(s.train) == sorted(t for t in tracks if part[t] in ("train", "valid"))
    assert sorted(s.test) == sorted(t for t in tracks if part[t] == "test")
    again = FaultFilteredProtocol(n_folds=10).outer_splits(fake, tracks[::-1], seed=5)[0]
    assert sorted(again.test) == sorted(s.test)  # no randomness, one fold whatever is asked
    assert FaultFilteredProtocol(n_folds=10).n_folds == 1


def test_fault_filtered_leaves_out_unlisted_tracks(fake_gtzan: Path, tmp_path: Path) -> None:
    root = tmp_path / "g"
    shutil.copytree(fake_gtzan, root, ignore=shutil.ignore_patterns("images_original"))
    test_list = root / "splits" / "test_filtered.txt"
    entries = test_list.read_text().split()
    test_list.write_text("\n".join(entries[1:]) + "\n")
    ds = Dataset(root, MANIFEST)
    s = FaultFilteredProtocol().outer_splits(ds, _tracks(ds), seed=0)[0]
    dropped = Path(entries[0]).stem
    assert dropped not in set(s.train) | set(s.test)
    assert len(s.train) + len(s.test) == len(ds.tracks) - 1


# --- tables, errors, availability -----------------------------------------------------------
def test_splits_table(fake: Dataset) -> None:
    tracks = _tracks(fake)
    p = ArtistKFoldProtocol(n_folds=4)
    splits = p.outer_splits(fake, tracks, seed=0)
    table = splits_table(p, splits)
    assert list(table.columns) == ["protocol", "fold", "track_id", "part"]
    assert table.shape == (4 * len(tracks), 4)
    assert (table["protocol"] == "artist_kfold").all()
    assert not table.duplicated(["fold", "track_id"]).any()
    test_rows = table[table["part"] == "test"]
    assert test_rows["track_id"].value_counts().eq(1).all()
    assert len(test_rows) == len(tracks)
    ff_protocol = FaultFilteredProtocol()
    ff = splits_table(ff_protocol, ff_protocol.outer_splits(fake, tracks, 0))
    assert ff.shape[0] == int(fake.tracks["ff_split"].notna().sum())
    assert set(ff["fold"]) == {0} and set(ff["part"]) == {"train", "test"}


def test_stratified_kfold_needs_enough_tracks_per_genre(fake: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"10-fold needs at least 10 tracks per genre.*has 8"):
        StratifiedKFoldProtocol(n_folds=10).outer_splits(fake, _tracks(fake), seed=0)
    few = _tracks(fake)[np.r_[0:8, 8:11]]  # blues 8, classical 3
    with pytest.raises(ConfigError, match="smallest genre here has 3: lower n_folds"):
        StratifiedKFoldProtocol(n_folds=4).outer_splits(fake, few, seed=0)


def test_cannot_split_a_single_group(fake: Dataset) -> None:
    one_artist = np.array(["blues.00000", "blues.00001"])  # one artist in the fixture
    assert len(set(fake.artist_groups(one_artist))) == 1
    with pytest.raises(ConfigError, match=r"cannot split 2 tracks in 1 group"):
        ArtistKFoldProtocol(n_folds=2).outer_splits(fake, one_artist, seed=0)


def test_get_protocol() -> None:
    assert set(PROTOCOLS) == {"stratified_kfold", "artist_kfold", "fault_filtered"}
    p = get_protocol("artist_kfold", n_folds=5)
    assert isinstance(p, ArtistKFoldProtocol)
    assert p.to_dict() == {"name": "artist_kfold", "n_folds": 5, "group_by": "artist"}
    assert get_protocol("fault_filtered").to_dict()["group_by"] == "artist"
    assert get_protocol("stratified_kfold").group_by == "track"
    with pytest.raises(
        ConfigError, match="unknown protocol 'random'; known: artist_kfold, fault_filtered"
    ):
        get_protocol("random")


def test_unavailable_reasons(fake: Dataset, tmp_path: Path) -> None:
    assert all(get_protocol(n).unavailable(fake) is None for n in PROTOCOLS)
    root = make_fake_gtzan(
        tmp_path / "g",
        n_per_genre=2,
        with_csv_3s=False,
        with_images=False,
        with_artists=False,
        with_fault_filtered=False,
    )
    bare = Dataset(root, MANIFEST)
    reason = ArtistKFoldProtocol().unavailable(bare)
    assert reason and "metadata/GTZANindex.txt" in reason and str(root) in reason
    reason = FaultFilteredProtocol().unavailable(bare)
    assert reason and "fault-filtered" in reason and "splits/" in reason
    assert StratifiedKFoldProtocol().unavailable(bare) is None


def test_segments_cannot_split_from_their_track(fake: Dataset) -> None:
    """Splits are over track ids: mapping csv_3s rows onto them keeps each track's rows on one
    side (rule 2 of the design)."""
    seg = fake.features_csv(segmented=True)
    row_track = seg["track_id"].to_numpy(dtype=str)
    for s in StratifiedKFoldProtocol(n_folds=4).outer_splits(fake, _tracks(fake), seed=0):
        in_test = np.isin(row_track, s.test)
        assert in_test.sum() == 10 * len(s.test)
        assert not set(row_track[in_test]) & set(row_track[~in_test])


# --- the real copy -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(real_gtzan: Path) -> Dataset:
    return Dataset.open(real_gtzan)


@pytest.mark.integration
@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_real_protocols(real: Dataset, name: str) -> None:
    tracks = real.tracks["track_id"].to_numpy(dtype=str)
    protocol = get_protocol(name)
    splits: list[OuterSplit] = protocol.outer_splits(real, tracks, seed=0)
    counts = []
    for s in splits:
        assert_no_leak(real, s.train, s.test, by_artist=by_artist(protocol), what=f"{s.fold}")
        counts.append(np.bincount(real.labels_of(s.test), minlength=len(GENRES)))
    if name == "stratified_kfold":
        assert (np.array(counts) == 10).all()
    elif name == "artist_kfold":
        # big artists (Bob Marley has 35 reggae clips) make exact balance impossible; stratified
        # grouping still keeps folds near 10 per genre (unstratified GroupKFold: ~6 off)
        assert all(85 <= len(s.test) <= 115 for s in splits)
        assert np.abs(np.array(counts) - 10).mean() < 4
    if name == "fault_filtered":
        (s,) = splits
        assert (len(s.train), len(s.test)) == (443 + 197, 290)
    else:
        assert len(splits) == 10
        assert sorted(np.concatenate([s.test for s in splits])) == sorted(tracks)
    # inner splits of the first outer training part
    for a, b in protocol.inner_splits(real, splits[0].train, 3, seed=0):
        assert_no_leak(real, a, b, by_artist=by_artist(protocol), what="inner")


@pytest.mark.integration
def test_real_random_folds_do_leak_artists(real: Dataset) -> None:
    """Why the artist protocols exist: random folds put most artists on both sides."""
    tracks = real.tracks["track_id"].to_numpy(dtype=str)
    s = StratifiedKFoldProtocol(n_folds=10).outer_splits(real, tracks, seed=0)[0]
    key = artist_key(real)
    shared = {key[t] for t in s.train if t in key} & {key[t] for t in s.test if t in key}
    assert len(shared) > 30


HOLDOUT = '''"""A protocol added as one module: a random 70/30 holdout over tracks."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchmark.protocols.base import OuterSplit, Protocol


class HoldoutProtocol(Protocol):
    name = "tmp_holdout"
    group_by = "track"
    kind = "test split"
    description = "a random 70/30 split of the tracks"
    params: ClassVar[dict[str, type]] = {"share": float}

    def __init__(self, share: float = 0.3) -> None:
        super().__init__(n_folds=1)
        self.share = share

    def outer_splits(self, dataset, tracks, seed):
        rng = np.random.default_rng(seed)
        test = rng.random(len(tracks)) < self.share
        return [OuterSplit(fold=0, train=tracks[~test], test=tracks[test])]
'''


def test_a_protocol_is_one_new_module(fake_gtzan: Path, tmp_path: Path, make_config) -> None:
    """Drop a module into benchmark/protocols/: configs accept it, its parameters are
    checked, a run scores it, and it never selects the final model (a test split)."""
    import benchmark.protocols as protocols
    from benchmark.execution.local import plan_and_run
    from benchmark.execution.plan import RunOptions

    module = Path(protocols.__file__).parent / "tmp_holdout.py"
    module.write_text(HOLDOUT)
    protocols._discover.cache_clear()
    try:
        assert "tmp_holdout" in all_protocols()
        assert "tmp_holdout" not in protocols.selection_protocols()
        h = dict(name="h", seed=None, families=["lda"], n_trials=1, n_jobs=None)
        cfg = make_config(**h, protocols={"tmp_holdout": {"share": 0.25}})
        with pytest.raises(ConfigError, match=r"protocols.tmp_holdout: unknown parameter"):
            make_config(**h, protocols={"tmp_holdout": {"folds": 2}})
        opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path / "r", track=False)
        res = plan_and_run(cfg, opts).results
        assert set(res["protocol"]) == {"tmp_holdout"} and set(res["status"]) == {"done"}
        assert 0.15 < res["n_test"].iloc[0] / 80 < 0.35
    finally:
        module.unlink()
        protocols._discover.cache_clear()
    assert "tmp_holdout" not in all_protocols()
