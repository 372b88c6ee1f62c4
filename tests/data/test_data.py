"""The dataset layer (benchmark/data/) on a generated Kaggle-layout folder, plus the real copy."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_gtzan import FEATURE_COLUMNS, GENRES, artist_plan, make_fake_gtzan, png_path

from benchmark import data as data_mod
from benchmark.data import (
    Dataset,
    download,
    load_manifest,
    locate_data_dir,
    read_features_csv,
    track_id_from_name,
)
from benchmark.errors import DataError

MANIFEST = load_manifest("gtzan")
N_PER_GENRE = 8  # the fake_gtzan fixture's size


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "gtzan"
    shutil.copytree(src, dst)
    return dst


def _manifest(**changes: object) -> data_mod.Manifest:
    return dataclasses.replace(MANIFEST, **changes)


# --- locating the folder ----------------------------------------------------------------------
@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $GENREBENCH_DATA, and the working directory an empty folder (no ./data/gtzan)."""
    monkeypatch.delenv("GENREBENCH_DATA", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_locate_prefers_argument_then_env_then_default(
    no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arg, env, default = tmp_path / "arg", tmp_path / "env", no_env / "data" / "gtzan"
    for d in (arg, env, default):
        d.mkdir(parents=True)
    monkeypatch.setenv("GENREBENCH_DATA", str(env))
    assert locate_data_dir(str(arg), MANIFEST) == arg.resolve()
    assert locate_data_dir(None, MANIFEST) == env.resolve()
    monkeypatch.delenv("GENREBENCH_DATA")
    assert locate_data_dir(None, MANIFEST) == default.resolve()
    monkeypatch.setenv("GENREBENCH_DATA", "")  # set but empty: ignored
    assert locate_data_dir(None, MANIFEST) == default.resolve()


def test_locate_nothing_found_says_how_to_get_the_data(no_env: Path) -> None:
    with pytest.raises(DataError) as err:
        locate_data_dir(None, MANIFEST)
    msg = str(err.value)
    assert "no GTZAN data folder found" in msg
    assert "data/gtzan" in msg  # what was tried
    # the download hint: how to get it and the three ways to point at it
    assert "genrebench download" in msg and "kagglehub" in msg
    assert "--data-dir" in msg and "GENREBENCH_DATA" in msg
    assert MANIFEST.download["kaggle_dataset"] in msg
    with pytest.raises(DataError, match="no GTZAN data folder"):
        Dataset.open()


def test_locate_explicit_missing_folder_is_an_error_not_a_fallback(
    no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_env / "data" / "gtzan").mkdir(parents=True)  # would be found by the default
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"nowhere \(from --data-dir\) does not exist") as err:
        locate_data_dir(missing, MANIFEST)
    assert "genrebench download" in str(err.value)
    monkeypatch.setenv("GENREBENCH_DATA", str(missing))
    with pytest.raises(DataError, match=r"from \$GENREBENCH_DATA"):
        locate_data_dir(None, MANIFEST)


def test_locate_descends_into_the_kaggle_archives_data_folder(
    fake_gtzan: Path, tmp_path: Path, no_env: Path
) -> None:
    archive = tmp_path / "kaggle"
    archive.mkdir()
    (archive / "Data").symlink_to(fake_gtzan, target_is_directory=True)
    assert locate_data_dir(archive, MANIFEST) == fake_gtzan.resolve()
    assert Dataset.open(archive).root == fake_gtzan.resolve()
    # a folder that holds data itself is taken as is
    assert locate_data_dir(fake_gtzan, MANIFEST) == fake_gtzan.resolve()


# --- the track table ---------------------------------------------------------------------------
def test_track_id_from_name() -> None:
    assert track_id_from_name("blues.00000.wav") == ("blues.00000", None)
    assert track_id_from_name("blues.00000.3.wav") == ("blues.00000", 3)
    assert track_id_from_name("blues00042.png") == ("blues.00042", None)
    assert track_id_from_name("hiphop.00007.flac") == ("hiphop.00007", None)
    with pytest.raises(DataError, match="cannot read a track id"):
        track_id_from_name("readme.txt")


def test_track_table(fake_gtzan: Path) -> None:
    ds = Dataset.open(fake_gtzan)
    t = ds.tracks
    ids = [f"{g}.{i:05d}" for g in GENRES for i in range(N_PER_GENRE)]
    assert t["track_id"].to_numpy().tolist() == sorted(ids)
    assert list(t.columns) == [
        "track_id",
        "genre",
        "artist",
        "title",
        "in_csv_30s",
        "image_path",
        "audio_path",
        "ff_split",
    ]
    assert (t["genre"].to_numpy() == [i.split(".")[0] for i in t["track_id"].to_numpy()]).all()
    assert t["in_csv_30s"].all()
    for tid, image in zip(t["track_id"].to_numpy(), t["image_path"].to_numpy(), strict=True):
        assert Path(image) == png_path(fake_gtzan, tid) and Path(image).is_file()
    assert t["audio_path"].isna().all()  # the fixture has no audio

    artist, part = artist_plan(GENRES, N_PER_GENRE, seed=0)
    got_artist = dict(zip(t["track_id"].to_numpy(), t["artist"].to_numpy(), strict=True))
    assert got_artist == artist  # latin-1 names ("Artíst") decoded intact
    assert any("í" in a for a in got_artist.values())
    got_part = dict(zip(t["track_id"].to_numpy(), t["ff_split"].to_numpy(), strict=True))
    assert got_part == part
    # some titles are empty in the index: they become missing, not ""
    assert t["title"].isna().any() and (t["title"].dropna() != "").all()
    assert ds.has_artists and ds.has_fault_filtered
    assert ds.classes == list(GENRES)
    np.testing.assert_array_equal(ds.labels_of(["blues.00001", "rock.00000"]), [0, 9])


def test_track_table_unions_sources(tmp_path: Path) -> None:
    """Tracks come from any source: audio only, image only, CSV only."""
    root = make_fake_gtzan(
        tmp_path / "g",
        genres=("blues", "jazz"),
        n_per_genre=3,
        with_csv_3s=False,
        with_audio=True,
        audio_seconds=0.05,
    )
    (root / "genres_original" / "jazz" / "jazz.00003.wav").write_bytes(b"")  # audio only
    png_path(root, "blues.00001").unlink()
    (root / "genres_original" / "notes.txt").write_text("not audio")
    (root / "genres_original" / "blues" / "cover.jpg").write_bytes(b"")  # not audio either
    t = Dataset(root, MANIFEST).tracks.set_index("track_id")
    assert len(t) == 7
    assert t.loc["jazz.00003", "audio_path"].endswith("jazz.00003.wav")
    assert not t.loc["jazz.00003", "in_csv_30s"] and pd.isna(t.loc["jazz.00003", "image_path"])
    assert pd.isna(t.loc["blues.00001", "image_path"])
    assert t["audio_path"].notna().all()
    assert pd.isna(t.loc["jazz.00003", "artist"])  # not in the index


def test_tracks_with_audio_keeps_only_the_tracks_that_have_an_audio_file(
    tmp_path: Path, make_config
) -> None:
    """``tracks: with_audio``: a partial copy of the audio gives a track table of those clips
    alone (so every feature set covers the same tracks), a fingerprint of its own, and splits
    over those tracks only; an unknown subset is refused."""
    from benchmark.execution.plan import RunOptions, make_plan

    root = make_fake_gtzan(
        tmp_path / "g", genres=("blues", "jazz"), n_per_genre=6, with_csv_3s=False,
        with_audio=True, audio_seconds=0.05,
    )  # fmt: skip
    for tid in ("blues.00000", "jazz.00004"):
        (root / "genres_original" / tid.split(".")[0] / f"{tid}.wav").unlink()
    every = Dataset(root, MANIFEST)
    some = Dataset.open(root, tracks="with_audio")
    assert len(every.tracks) == 12 and len(some.tracks) == 10
    assert some.tracks["audio_path"].notna().all()
    assert not {"blues.00000", "jazz.00004"} & set(some.tracks["track_id"])
    assert some.fingerprint() != every.fingerprint()
    cfg = make_config(
        tracks="with_audio", feature_sets=["csv_30s"], families=["logreg"],
        protocols={"stratified_kfold": {"n_folds": 2}}, baseline=None,
    )  # fmt: skip
    plan = make_plan(cfg, some, RunOptions(data_dir=str(root)), "sqlite:///:memory:")
    assert set(plan.splits["track_id"]) == set(some.tracks["track_id"])
    with pytest.raises(DataError, match="unknown track subset 'wav_only'"):
        Dataset.open(root, tracks="wav_only")
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown tracks 'some'"):
        make_config(tracks="some")


def test_empty_folder_is_an_error_with_the_hint(tmp_path: Path) -> None:
    ds = Dataset(tmp_path, MANIFEST)
    with pytest.raises(DataError, match="holds no GTZAN data") as err:
        _ = ds.tracks
    assert "genrebench download" in str(err.value)
    errors, _ = ds.check()
    assert len(errors) == 1 and "holds no GTZAN data" in errors[0]


def test_unknown_genre_folder(tmp_path: Path) -> None:
    root = make_fake_gtzan(tmp_path / "g", genres=("blues",), n_per_genre=2, with_images=False)
    (root / "images_original" / "polka").mkdir(parents=True)
    shutil.copy(Path(__file__), root / "images_original" / "polka" / "polka00001.png")
    with pytest.raises(DataError, match="unknown genre folder/label 'polka'"):
        _ = Dataset(root, MANIFEST).tracks


def test_artist_groups(tmp_path: Path) -> None:
    root = make_fake_gtzan(
        tmp_path / "g",
        genres=("blues", "rock"),
        n_per_genre=4,
        with_csv_3s=False,
        with_images=False,
        with_fault_filtered=False,
    )
    index = root / "metadata" / "GTZANindex.txt"
    lines = index.read_text(encoding="latin-1").splitlines()
    lines = [ln for ln in lines if not ln.startswith("rock.00003")]  # no artist known
    # the same artist spelled two ways, as Sturm's index does for Rage Against the Machine
    lines = [
        ln.replace("Blues Artíst 0", "blues  ARTÍST 0") if ln.startswith("blues.00001") else ln
        for ln in lines
    ]
    index.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    ds = Dataset(root, MANIFEST)
    assert ds.tracks.set_index("track_id").loc["blues.00001", "artist"] == "blues  ARTÍST 0"
    g = dict(zip(ds.tracks["track_id"], ds.artist_groups(ds.tracks["track_id"]), strict=True))
    assert g["blues.00000"] == g["blues.00001"]  # one artist despite the spelling
    assert g["rock.00003"] == "unknown:rock.00003"  # its own group
    assert len({g["rock.00002"], g["rock.00003"]}) == 2
    groups = Counter(g.values())
    assert max(groups.values()) <= 3 and groups.most_common(1)[0][1] >= 2


def test_track_in_two_fault_filtered_lists_is_an_error(fake_gtzan: Path, tmp_path: Path) -> None:
    root = _copy(fake_gtzan, tmp_path)
    test_list = root / "splits" / "test_filtered.txt"
    first_test = test_list.read_text().split()[0]
    with (root / "splits" / "train_filtered.txt").open("a") as fh:
        fh.write(first_test + "\n")
    with pytest.raises(DataError, match=r"listed in both train_filtered.txt and test_filtered"):
        _ = Dataset(root, MANIFEST).tracks


# --- reading the feature CSVs --------------------------------------------------------------------
def _raw(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def test_read_features_csv(fake_gtzan: Path) -> None:
    df = read_features_csv(fake_gtzan / "features_30_sec.csv", MANIFEST, segmented=False)
    assert list(df.columns) == ["track_id", "label", *FEATURE_COLUMNS]
    assert len(df) == len(GENRES) * N_PER_GENRE
    assert df["track_id"].to_numpy()[0] == "blues.00000"
    assert (df[list(FEATURE_COLUMNS)].dtypes == "float64").all()
    raw = _raw(fake_gtzan / "features_30_sec.csv")
    assert raw["length"].unique().tolist() == ["661794"]
    np.testing.assert_array_equal(
        df[list(FEATURE_COLUMNS)].to_numpy(), raw[list(FEATURE_COLUMNS)].to_numpy(dtype=float)
    )
    seg = read_features_csv(fake_gtzan / "features_3_sec.csv", MANIFEST, segmented=True)
    assert list(seg.columns[:3]) == ["track_id", "label", "segment"]
    assert len(seg) == 10 * len(df)
    assert seg.groupby("track_id")["segment"].apply(sorted).map(tuple).nunique() == 1
    assert set(seg["segment"]) == set(range(10))
    assert _raw(fake_gtzan / "features_3_sec.csv")["filename"].iloc[3] == "blues.00000.3.wav"


def _mutations() -> list[tuple[str, object, str]]:
    def drop_column(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=["tempo"])

    def set_cell(row: int, col: str, value: str):  # noqa: ANN202
        def f(df: pd.DataFrame) -> pd.DataFrame:
            df.loc[row, col] = value
            return df

        return f

    def duplicate(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df, df.iloc[[5]]], ignore_index=True)

    return [
        ("missing column", drop_column, r"features_30_sec.csv: missing column\(s\) tempo$"),
        (
            "non-numeric",
            set_cell(3, "rms_mean", "abc"),
            r"non-numeric value 'abc' in column 'rms_mean' at row 5 \(file blues.00003.wav\)",
        ),
        ("empty", set_cell(4, "mfcc3_var", ""), r"empty value in column 'mfcc3_var' at row 6"),
        ("infinite", set_cell(2, "tempo", "inf"), r"infinite value .* 'tempo' at row 4"),
        (
            "unknown label",
            set_cell(9, "label", "polka"),
            r"unknown genre label 'polka' at row 11; known labels: blues, classical",
        ),
        ("duplicate", duplicate, r"duplicate entry 'blues.00005.wav' at row 82"),
        (
            "label/name clash",
            set_cell(2, "label", "rock"),
            r"row 4 file 'blues.00002.wav' is labelled 'rock', but its name says 'blues'",
        ),
        ("bad file name", set_cell(7, "filename", "blues_x.wav"), r"row 9: cannot read a track"),
    ]


@pytest.mark.parametrize(
    ("mutate", "message"), [m[1:] for m in _mutations()], ids=[m[0] for m in _mutations()]
)
def test_read_features_csv_errors_name_file_column_and_row(
    fake_gtzan: Path,
    tmp_path: Path,
    mutate,
    message: str,  # noqa: ANN001
) -> None:
    df = mutate(_raw(fake_gtzan / "features_30_sec.csv"))
    path = _write(df, tmp_path / "features_30_sec.csv")
    with pytest.raises(DataError, match=message) as err:
        read_features_csv(path, MANIFEST, segmented=False)
    assert "\n" not in str(err.value)  # one clear line
    assert str(err.value).startswith("features_30_sec.csv")


def test_read_features_csv_file_level_errors(fake_gtzan: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_features_csv(tmp_path / "nope.csv", MANIFEST, segmented=False)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty.csv is empty"):
        read_features_csv(tmp_path / "empty.csv", MANIFEST, segmented=False)
    header = _raw(fake_gtzan / "features_30_sec.csv").iloc[:0]
    with pytest.raises(DataError, match="has a header but no rows"):
        read_features_csv(_write(header, tmp_path / "h.csv"), MANIFEST, segmented=False)
    # a 30 s file where a 3 s file is expected: no segment numbers
    with pytest.raises(DataError, match=r"row 2 file 'blues.00000.wav' has no segment number"):
        read_features_csv(fake_gtzan / "features_30_sec.csv", MANIFEST, segmented=True)


def test_read_features_csv_3s_duplicate_segment(fake_gtzan: Path, tmp_path: Path) -> None:
    df = _raw(fake_gtzan / "features_3_sec.csv")
    df.loc[12, "filename"] = "blues.00001.1.wav"  # row 12 was blues.00001.2
    path = _write(df, tmp_path / "features_3_sec.csv")
    with pytest.raises(DataError, match=r"duplicate entry 'blues.00001.1.wav' at row 14"):
        read_features_csv(path, MANIFEST, segmented=True)


# --- validation ----------------------------------------------------------------------------------
def test_check_complete_fake(fake_gtzan: Path) -> None:
    manifest = _manifest(expected_per_class=N_PER_GENRE, fault_filtered_counts={})
    errors, notes = Dataset(fake_gtzan, manifest).check()
    assert errors == []
    n = len(GENRES) * N_PER_GENRE
    _, part = artist_plan(GENRES, N_PER_GENRE, seed=0)
    parts = Counter(part.values())
    assert notes == [
        f"features_30_sec.csv: {n} rows, {n} tracks",
        f"features_3_sec.csv: {10 * n} rows, {n} tracks",
        f"images_original/: {n} files",
        "genres_original/: absent",
        f"artists: {len(set(artist_plan(GENRES, N_PER_GENRE, 0)[0].values()))} known, "
        "0 tracks without an artist",
        f"fault-filtered split: train {parts['train']}, valid {parts['valid']}, "
        f"test {parts['test']}",
    ]


def test_check_only_the_30s_csv(tmp_path: Path) -> None:
    root = make_fake_gtzan(
        tmp_path / "g",
        with_csv_3s=False,
        with_images=False,
        with_artists=False,
        with_fault_filtered=False,
    )
    ds = Dataset(root, MANIFEST)
    errors, notes = ds.check()
    assert errors == []
    text = "\n".join(notes)
    assert "features_3_sec.csv: absent (the csv_3s feature set is unavailable)" in text
    assert "images_original/: absent" in text and "genres_original/: absent" in text
    assert "metadata/GTZANindex.txt: absent (the artist-grouped protocol is unavailable)" in text
    assert "fault-filtered split lists: absent" in text
    # the complete dataset has 100 per genre: the partial copy is reported, not refused
    assert "features_30_sec.csv: per-genre counts differ from 100: blues 8," in text
    assert not ds.has_artists and not ds.has_fault_filtered
    assert ds.tracks["artist"].isna().all()


def test_check_reports_short_genres_and_missing_files(fake_gtzan: Path, tmp_path: Path) -> None:
    root = _copy(fake_gtzan, tmp_path)
    df = _raw(root / "features_30_sec.csv")
    _write(df[~df["filename"].isin(["jazz.00001.wav", "jazz.00004.wav"])], root / df_name())
    for tid in [f"rock.{i:05d}" for i in range(N_PER_GENRE)] + ["blues.00003"]:
        png_path(root, tid).unlink()
    seg = _raw(root / "features_3_sec.csv")
    _write(seg[seg["filename"] != "pop.00002.7.wav"], root / "features_3_sec.csv")
    errors, notes = Dataset(root, _manifest(expected_per_class=N_PER_GENRE)).check()
    assert errors == []
    assert "features_30_sec.csv: per-genre counts differ from 8: jazz 6" in notes
    assert "features_3_sec.csv: segments per track range 9–10" in notes
    assert "images_original: no tracks of rock" in notes
    assert "images_original: per-genre counts differ from 8: blues 7" in notes
    assert (
        "images_original/: no file for blues.00003, rock.00000, rock.00001, rock.00002, "
        "rock.00003, rock.00004, rock.00005, rock.00006, rock.00007" in notes
    )


def df_name() -> str:
    return MANIFEST.files["features_30s"]


def test_check_reports_a_broken_csv_once(fake_gtzan: Path, tmp_path: Path) -> None:
    root = _copy(fake_gtzan, tmp_path)
    df = _raw(root / "features_30_sec.csv")
    df.loc[0, "tempo"] = "fast"
    _write(df, root / "features_30_sec.csv")
    errors, _ = Dataset(root, MANIFEST).check()
    assert errors == [
        "features_30_sec.csv: non-numeric value 'fast' in column 'tempo' at row 2 "
        "(file blues.00000.wav)"
    ]


def test_check_fault_filtered_counts_on_a_complete_copy(fake_gtzan: Path) -> None:
    manifest = _manifest(
        expected_per_class=N_PER_GENRE, fault_filtered_counts={"train": 1, "valid": 2, "test": 3}
    )
    errors, _ = Dataset(fake_gtzan, manifest).check()
    assert len(errors) == 3 and errors[0].startswith("fault-filtered train: ")
    assert errors[0].endswith("tracks, expected 1")
    # on a partial copy (the real manifest expects 100 per genre) the counts cannot match
    assert Dataset(fake_gtzan, MANIFEST).check()[0] == []


def test_fake_images_depend_on_the_genre(fake_gtzan: Path) -> None:
    from benchmark.features.spectrogram import read_spectrogram_png

    # each genre is bright in its own tenth of the frequency axis (row 0 = low frequency)
    profiles = {
        g: read_spectrogram_png(png_path(fake_gtzan, f"{g}.00001"))[0].mean(axis=1) for g in GENRES
    }
    common = np.mean(list(profiles.values()), axis=0)
    for k, g in enumerate(GENRES):
        peak = int(np.argmax(profiles[g] - common)) / len(common)
        assert k / len(GENRES) <= peak < (k + 1) / len(GENRES), g


# --- identity ------------------------------------------------------------------------------------
def test_checksum_and_fingerprint(fake_gtzan: Path, tmp_path: Path) -> None:
    root = _copy(fake_gtzan, tmp_path)
    before = Dataset(root, MANIFEST)
    checksum = before.checksum()
    assert checksum == Dataset(root, MANIFEST).checksum()
    assert checksum == Dataset(fake_gtzan, MANIFEST).checksum()  # content, not place
    # one digit of one value in the CSV changes: same size, same track table
    path = root / "features_30_sec.csv"
    blob = bytearray(path.read_bytes())
    pos = blob.index(b"661794,") + len(b"661794,") + 3
    blob[pos] = ord("1") if blob[pos] != ord("1") else ord("2")
    path.write_bytes(bytes(blob))
    after = Dataset(root, MANIFEST)
    assert after.fingerprint() == before.fingerprint()
    changed = after.checksum()
    assert changed != checksum
    # a missing image changes the checksum; the fingerprint (ids, genres, artists, splits) stays
    png_path(root, "rock.00002").unlink()
    gone = Dataset(root, MANIFEST)
    assert gone.checksum() not in (checksum, changed)
    assert gone.fingerprint() == before.fingerprint()
    # an artist change changes both
    index = root / "metadata" / "GTZANindex.txt"
    index.write_bytes(index.read_bytes().replace(b"Rock Art\xedst 0", b"Someone Else"))
    moved = Dataset(root, MANIFEST)
    assert moved.fingerprint() != before.fingerprint()
    assert moved.checksum() != gone.checksum()


# --- download ------------------------------------------------------------------------------------
def _fake_kagglehub(
    monkeypatch: pytest.MonkeyPatch, source: Path, cache: Path, *, output_dir: bool
) -> list[str]:
    """A stand-in kagglehub that "downloads" ``source`` as Kaggle's archive (layout under Data/)."""
    calls: list[str] = []

    def fetch(target: Path) -> str:
        shutil.copytree(source, target / "Data", dirs_exist_ok=True)
        shutil.copy(source / "features_30_sec.csv", target / "features_30_sec_extra.txt")
        return str(target)

    if output_dir:

        def dataset_download(handle, path=None, *, force_download=False, output_dir=None):  # noqa: ANN001, ANN202
            calls.append(handle)
            return fetch(Path(output_dir) if output_dir else cache)
    else:

        def dataset_download(handle, path=None, *, force_download=False):  # noqa: ANN001, ANN202
            calls.append(handle)
            return fetch(cache)

    module = types.ModuleType("kagglehub")
    module.dataset_download = dataset_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kagglehub", module)
    return calls


def test_download_with_output_dir(
    fake_gtzan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_kagglehub(monkeypatch, fake_gtzan, tmp_path / "cache", output_dir=True)
    dest = tmp_path / "data" / "gtzan"
    got = download(dest)
    assert calls == [MANIFEST.download["kaggle_dataset"]]
    assert got == (dest / "Data").resolve() and (got / "features_30_sec.csv").is_file()
    assert not (tmp_path / "cache").exists()
    # the folder is then found by the default lookup, and a second download is a no-op
    assert locate_data_dir(dest, MANIFEST) == got
    assert download(dest) == got and len(calls) == 1


def test_download_into_kagglehub_cache_links_dest(
    fake_gtzan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache" / "datasets" / "gtzan" / "versions" / "1"
    calls = _fake_kagglehub(monkeypatch, fake_gtzan, cache, output_dir=False)
    dest = tmp_path / "data"
    got = download(dest)
    assert len(calls) == 1
    assert dest.is_symlink() and dest.resolve() == cache.resolve()
    assert got == (cache / "Data").resolve()
    assert len(Dataset.open(dest).tracks) == len(GENRES) * N_PER_GENRE
    # a dest that is already something else is left alone: the data stay in the cache
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert download(other) == got
    assert len(calls) == 2
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


def test_download_without_kagglehub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import kagglehub raises ImportError
    with pytest.raises(DataError, match="needs kagglehub: pip install kagglehub") as err:
        download(tmp_path / "data")
    assert "--data-dir" in str(err.value)  # the by-hand route


def test_download_network_failure_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dataset_download(handle, path=None, *, force_download=False, output_dir=None):  # noqa: ANN001, ANN202
        raise ConnectionError("Max retries exceeded with url: /api/v1/datasets\nTraceback...")

    module = types.ModuleType("kagglehub")
    module.dataset_download = dataset_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kagglehub", module)
    with pytest.raises(DataError) as err:
        download(tmp_path / "data")
    msg = str(err.value)
    assert "\n" not in msg
    assert "ConnectionError: Max retries exceeded" in msg
    assert MANIFEST.download["kaggle_dataset"] in msg


def test_download_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def dataset_download(handle, path=None, *, force_download=False, output_dir=None):  # noqa: ANN001, ANN202
        (Path(output_dir) / "readme.md").write_text("empty archive")
        return output_dir

    module = types.ModuleType("kagglehub")
    module.dataset_download = dataset_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kagglehub", module)
    with pytest.raises(DataError, match="found no features_30_sec.csv"):
        download(tmp_path / "data")


# --- the real copy -------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_gtzan(real_gtzan: Path) -> None:
    ds = Dataset.open(real_gtzan)
    t = ds.tracks
    assert len(t) == 1000
    assert int(t["in_csv_30s"].sum()) == 1000
    assert int(t["image_path"].notna().sum()) == 999
    assert pd.isna(t.set_index("track_id").loc["jazz.00054", "image_path"])
    assert int(t["audio_path"].notna().sum()) == 115
    assert t["ff_split"].value_counts().to_dict() == {"train": 443, "valid": 197, "test": 290}
    groups = ds.artist_groups(t["track_id"].to_numpy())
    assert 320 <= len(set(groups)) <= 330  # ~325 artists (tracks without one count alone)
    assert t["genre"].value_counts().to_dict() == dict.fromkeys(GENRES, 100)
    errors, notes = ds.check()
    assert errors == []
    assert "images_original/: no file for jazz.00054" in notes
    df = ds.features_csv(segmented=False)
    assert df.shape == (1000, 2 + len(FEATURE_COLUMNS))
    assert os.path.basename(t["audio_path"].dropna().iloc[0]).endswith(".flac")
