"""No silent data loss in a folder (issue 17): two files that map to one track id are refused in
one line naming both, and ``data check`` counts and lists every file it does not read, and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.data import Dataset
from benchmark.errors import DataError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / "genres_original" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" + bytes(40))  # the track table never decodes a file


def _check(root: Path, manifest: str = "folder") -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["data", "check", "--manifest", manifest, "--data-dir", str(root)]
    )
    return result.exit_code, result.output


def test_three_names_of_one_track_are_refused_naming_each_file(tmp_path: Path) -> None:
    """The issue's reproduction: 8 files on disk, three of them read as ``lofi.1``."""
    _touch(tmp_path, "lofi/1.flac", "lofi/lofi1.flac", "lofi/lofi.1.flac", "lofi/tape.flac")
    _touch(tmp_path, "jazz/a.wav", "jazz/b.wav", "jazz/c.wav", "jazz/d.wav")
    with pytest.raises(DataError) as info:
        _ = Dataset.open(tmp_path, "folder").tracks
    message = str(info.value)
    assert "\n" not in message
    for name in ("lofi/1.flac", "lofi/lofi.1.flac", "lofi/lofi1.flac"):
        assert name in message
    assert "track id 'lofi.1'" in message and "rename or remove" in message

    code, out = _check(tmp_path)
    assert code == 1
    (line,) = [ln for ln in out.splitlines() if "error" in ln]
    assert "lofi/1.flac" in line and "lofi/lofi1.flac" in line and "'lofi.1'" in line


def test_one_recording_in_two_formats_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path, "lofi/night drive.wav", "lofi/night drive.mp3")
    with pytest.raises(DataError, match=r"night drive\.mp3 and lofi/night drive\.wav .*'lofi"):
        _ = Dataset.open(tmp_path, "folder").tracks


def test_a_gtzan_clip_in_two_genre_folders_is_refused(fake_gtzan: Path, tmp_path: Path) -> None:
    """Under the gtzan manifest the id comes from the name alone: a copy filed in another
    folder would silently replace the original."""
    root = tmp_path / "g"
    shutil.copytree(fake_gtzan, root, ignore=shutil.ignore_patterns("images_original"))
    _touch(root, "blues/blues.00000.wav", "rock/blues.00000.wav")
    with pytest.raises(DataError, match=r"blues/blues\.00000\.wav and rock/blues\.00000\.wav"):
        _ = Dataset.open(root, "gtzan").tracks


def test_several_clashes_are_counted_in_the_one_line(tmp_path: Path) -> None:
    _touch(tmp_path, "a/1.wav", "a/a1.wav", "a/2.wav", "a/a2.wav", "a/3.wav", "a/a.3.wav")
    with pytest.raises(DataError, match=r"\(2 more track id\(s\) have several files\)"):
        _ = Dataset.open(tmp_path, "folder").tracks


def test_data_check_counts_and_lists_every_file_it_ignores(tmp_path: Path) -> None:
    _touch(tmp_path, "lofi/tape.flac", "lofi/dusk.WAV", "jazz/a.wav", "jazz/b.mp3")
    _touch(
        tmp_path,
        "lofi/cover.jpg",  # not audio
        "lofi/notes",  # no extension
        "lofi/._tape.flac",  # macOS AppleDouble: a .flac name, not music
        "lofi/live/one.wav",  # one level too deep
        "lofi/live/two.wav",
        "stray.mp3",  # not in a class folder
        ".git/objects/ab",  # a hidden folder: one entry
        ".git/HEAD",
    )
    ds = Dataset.open(tmp_path, "folder")
    assert ds.classes == ["jazz", "lofi"]  # no ".git" class
    assert sorted(ds.tracks["track_id"]) == ["jazz.a", "jazz.b", "lofi.dusk", "lofi.tape"]
    ignored = {str(i.path.relative_to(tmp_path / "genres_original")): i for i in ds.ignored_files()}
    assert set(ignored) == {
        "lofi/cover.jpg",
        "lofi/notes",
        "lofi/._tape.flac",
        "lofi/live/one.wav",
        "lofi/live/two.wav",
        "stray.mp3",
        ".git",
    }
    assert ignored[".git"].n_files == 2 and "hidden folder (2 file(s))" in ignored[".git"].reason

    code, out = _check(tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert any("genres_original/: 4 files" in ln for ln in lines)
    assert any("genres_original/: 8 file(s) ignored:" in ln for ln in lines)
    why = {
        "genres_original/lofi/cover.jpg": "not an audio file (.jpg; read: .wav, .au, .flac,",
        "genres_original/lofi/notes": "not an audio file (no extension;",
        "genres_original/lofi/._tape.flac": "hidden file",
        "genres_original/lofi/live/one.wav": "in a subfolder of a class folder",
        "genres_original/lofi/live/two.wav": "in a subfolder of a class folder",
        "genres_original/stray.mp3": "not in a class folder",
        "genres_original/.git": "hidden folder (2 file(s))",
    }
    for name, reason in why.items():
        (line,) = [ln for ln in lines if ln.strip().startswith(f"{name}:")]
        assert reason in line, line
    assert "ok: 4 tracks" in out


def test_ignored_images_are_listed_too(fake_gtzan: Path, tmp_path: Path) -> None:
    root = tmp_path / "g"
    shutil.copytree(fake_gtzan, root)
    (root / "images_original" / "blues" / "Thumbs.db").write_bytes(b"x")
    code, out = _check(root, "gtzan")
    assert code == 0, out
    assert "images_original/: 1 file(s) ignored:" in out
    assert "images_original/blues/Thumbs.db: not a .png image (.db; read: .png)" in out


def test_a_clean_folder_reports_nothing_ignored(fake_gtzan: Path) -> None:
    errors, notes = Dataset.open(fake_gtzan, "gtzan").check()
    assert errors == [] and not any("ignored" in n for n in notes)


def test_file_names_that_look_like_markup_are_printed_as_they_are(tmp_path: Path) -> None:
    _touch(tmp_path, "lofi/[live] tape.flac", "lofi/[red]notes.txt")
    code, out = _check(tmp_path)
    assert code == 0, out
    assert "lofi/[red]notes.txt: not an audio file" in out
