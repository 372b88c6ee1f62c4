"""The track table: a dataset folder scanned into one row per track (id, genre, artist, paths,
fault-filtered part), with its checks and checksum; everything downstream works from it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.features_csv import read_features_csv
from benchmark.data.location import locate_data_dir
from benchmark.data.manifest import Manifest, load_manifest
from benchmark.data.track_names import AUDIO_EXTENSIONS, track_id_from_name, track_id_in_class
from benchmark.errors import DataError


@dataclass(frozen=True)
class Ignored:
    """A file (or a hidden folder of ``n_files`` files) that the track table does not read."""

    path: Path
    reason: str
    n_files: int = 1


def _hidden(path: Path) -> Ignored:
    """A hidden file, or a hidden folder as one entry (``.git`` holds thousands of files)."""
    if not path.is_dir():
        return Ignored(path, "hidden file")
    n = len(_files_below(path))
    return Ignored(path, f"hidden folder ({n} file(s))", n)


def _files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted (folder links are not followed)."""
    return sorted(Path(d) / f for d, _, files in os.walk(folder) for f in files)


def _artist_key(name: str) -> str:
    return " ".join(name.casefold().split())


#: the values of the config's ``tracks`` key
TRACK_SUBSETS = ("all", "with_audio")

_FOLDER_HINT = "for other class or file names use `dataset: folder` (configs/folder.yaml)"


@dataclass
class Dataset:
    """A GTZAN-layout folder and its track table.

    ``tracks`` has one row per track id found in any of the sources (feature CSVs, images,
    audio), with columns ``track_id, genre, artist, title, in_csv_30s, image_path, audio_path,
    ff_split`` (``train``/``valid``/``test``/None). With ``tracks="with_audio"`` it holds only
    the tracks that have an audio file: every feature set then covers the same tracks, so a
    CSV set and an audio set are compared on the same clips (a partial copy of the audio).
    """

    root: Path
    manifest: Manifest
    #: ``all`` (every track found) or ``with_audio`` (the tracks with an audio file)
    subset: str = "all"

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        manifest: str = "gtzan",
        tracks: str = "all",
    ) -> Dataset:
        if tracks not in TRACK_SUBSETS:
            raise DataError(f"unknown track subset {tracks!r}; known: {', '.join(TRACK_SUBSETS)}")
        m = load_manifest(manifest)
        return cls(locate_data_dir(data_dir, m), m, tracks)

    # --- file locations -------------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.root / self.manifest.files[key]

    @cached_property
    def classes(self) -> list[str]:
        """The manifest's classes, or (``classes: auto``) every class folder under the audio
        and image folders and every label of the feature CSVs, sorted."""
        if self.manifest.classes is not None:
            return list(self.manifest.classes)
        found: set[str] = set()
        for key in ("audio", "images"):
            folder = self.path(key)
            if folder.is_dir():  # hidden folders (.git, .ipynb_checkpoints) are not classes
                found |= {
                    d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                }
        for key in ("features_30s", "features_3s"):
            csv = self.path(key)
            if csv.exists():
                try:
                    labels = pd.read_csv(csv, usecols=[self.manifest.csv_label_column])
                except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
                    continue  # read_features_csv names the problem when the set is used
                found |= set(labels[self.manifest.csv_label_column].astype(str).str.strip())
        if not found:
            raise DataError(
                f"{self.root}: no class folders (expected {self.manifest.files['audio']}/<class>/"
                "<file>) and no feature CSV"
            )
        for label in found:
            track_id_in_class("x", label)  # refuses unusable names
        return sorted(found)

    def _track_id(self, path: Path) -> str:
        """A media file's track id: from its name (GTZAN), or its class folder and name."""
        if self.manifest.classes is None:
            return track_id_in_class(path.name, path.parent.name)[0]
        try:
            return track_id_from_name(path.name)[0]
        except DataError as exc:
            raise DataError(f"{path.parent}: {exc}; {_FOLDER_HINT}") from None

    def _scan(self, key: str) -> tuple[list[Path], list[Ignored]]:
        """The media files of folder ``key`` (``audio`` or ``images``) that become tracks, and
        everything else in it with why it is not read: a benchmark that drops a file must say
        so (``data check`` lists them). Only ``<folder>/<class>/<file>`` is read."""
        folder = self.path(key)
        if not folder.is_dir():
            return [], []
        exts = AUDIO_EXTENSIONS if key == "audio" else (".png",)
        kind = "an audio file" if key == "audio" else "a .png image"
        used: list[Path] = []
        ignored: list[Ignored] = []
        nested = f"in a subfolder of a class folder (only {folder.name}/<class>/<file> is read)"
        for top in sorted(folder.iterdir()):
            if top.name.startswith("."):
                ignored.append(_hidden(top))
                continue
            if not top.is_dir():
                ignored.append(Ignored(top, "not in a class folder"))
                continue
            for f in sorted(top.iterdir()):
                if f.name.startswith("."):  # macOS ._x.wav, .DS_Store: never music
                    ignored.append(_hidden(f))
                elif f.is_dir():  # each file: these are often music the user meant to include
                    ignored.extend(Ignored(g, nested) for g in _files_below(f))
                elif f.suffix.lower() not in exts:
                    ext = f.suffix or "no extension"
                    ignored.append(Ignored(f, f"not {kind} ({ext}; read: {', '.join(exts)})"))
                else:
                    used.append(f)
        return used, ignored

    def ignored_files(self) -> list[Ignored]:
        """Every file under the audio and image folders that is not read, with the reason."""
        return [*self._scan("audio")[1], *self._scan("images")[1]]

    def _media_ids(self, key: str) -> dict[str, Path]:
        """Track id -> file for folder ``key``.

        Two files that map to one id (``lofi/1.flac``, ``lofi/lofi1.flac``, ``lofi/lofi.1.flac``
        are all ``lofi.1``) are refused rather than given distinct ids: the id is what joins a
        track's CSV row, image and audio (``blues.00000.wav`` and ``blues00000.png`` are one
        track by design), so names that read alike are meant to be one track and which file is
        "the" track cannot be guessed; the commonest cause is one recording in two formats or
        two folders, which distinct ids would put on both sides of a split (a test clip also in
        training); and ids made distinct by order or suffix would change when a file is added.
        """
        ids: dict[str, list[Path]] = {}
        for f in self._scan(key)[0]:
            ids.setdefault(self._track_id(f), []).append(f)
        clashes = {tid: files for tid, files in ids.items() if len(files) > 1}
        if clashes:
            folder = self.path(key)
            tid, files = next(iter(clashes.items()))
            names = [str(f.relative_to(folder)) for f in files]
            more = len(clashes) - 1
            raise DataError(
                f"{folder}: {', '.join(names[:-1])} and {names[-1]} all map to track id {tid!r}; "
                "rename or remove all but one"
                + (f" ({more} more track id(s) have several files)" if more else "")
            )
        return {tid: files[0] for tid, files in ids.items()}

    # --- the track table ------------------------------------------------------------------
    @cached_property
    def tracks(self) -> pd.DataFrame:
        rows: dict[str, dict[str, Any]] = {}

        def row(tid: str) -> dict[str, Any]:
            return rows.setdefault(
                tid,
                {
                    "track_id": tid,
                    "genre": tid.split(".")[0],
                    "artist": None,
                    "title": None,
                    "in_csv_30s": False,
                    "image_path": None,
                    "audio_path": None,
                    "ff_split": None,
                },
            )

        csv30 = self.path("features_30s")
        if csv30.exists():
            for tid in self.features_csv(segmented=False)["track_id"]:
                row(tid)["in_csv_30s"] = True
        for key, col in (("images", "image_path"), ("audio", "audio_path")):
            for tid, f in self._media_ids(key).items():
                row(tid)[col] = str(f)
        if not rows:
            raise DataError(
                f"{self.root} holds no GTZAN data (no {self.manifest.files['features_30s']}, "
                f"{self.manifest.files['images']}/ or {self.manifest.files['audio']}/).\n"
                f"{self.manifest.download_hint}"
            )
        for tid, (artist, title) in self._artist_index().items():
            if tid in rows:
                rows[tid]["artist"], rows[tid]["title"] = artist, title
        for tid, part in self._fault_filtered().items():
            if tid in rows:
                rows[tid]["ff_split"] = part
        df = pd.DataFrame(sorted(rows.values(), key=lambda r: r["track_id"]))
        if self.subset == "with_audio":
            df = df[df["audio_path"].notna()]
            if df.empty:
                raise DataError(
                    f"{self.root}: tracks: with_audio, but no track has an audio file under "
                    f"{self.manifest.files['audio']}/"
                )
        unknown = sorted(set(df["genre"]) - set(self.classes))
        if unknown:
            raise DataError(
                f"{self.root}: unknown genre folder/label {unknown[0]!r}; "
                f"known: {', '.join(self.classes)}; {_FOLDER_HINT}"
            )
        return df.reset_index(drop=True)

    def features_csv(self, *, segmented: bool) -> pd.DataFrame:
        key = "features_3s" if segmented else "features_30s"
        return read_features_csv(self.path(key), self.manifest, segmented=segmented)

    def _artist_index(self) -> dict[str, tuple[str | None, str | None]]:
        path = self.path("artists")
        if not path.exists():
            return {}
        out: dict[str, tuple[str | None, str | None]] = {}
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("#") or ":::" not in line:
                continue
            parts = [p.strip() for p in line.split(":::")]
            clip, artist, title = (parts + ["", ""])[:3]
            out[track_id_from_name(clip)[0]] = (artist or None, title or None)
        return out

    def _fault_filtered(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in ("train", "valid", "test"):
            path = self.root / self.manifest.files["fault_filtered"].format(part=part)
            if path.exists():
                for line in path.read_text().split():
                    tid = track_id_from_name(Path(line).name)[0]
                    if out.get(tid, part) != part:
                        # a track on both sides of the split would leak into its own test
                        raise DataError(
                            f"{path.parent}: {tid} is listed in both {out[tid]}_filtered.txt "
                            f"and {path.name}"
                        )
                    out[tid] = part
        return out

    @property
    def has_artists(self) -> bool:
        return self.tracks["artist"].notna().any()

    @property
    def has_fault_filtered(self) -> bool:
        return self.tracks["ff_split"].notna().any()

    def labels_of(self, track_ids: Iterable[str]) -> np.ndarray:
        """Integer class index (position in ``classes``) of each track id."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[t.split(".")[0]] for t in track_ids], dtype=np.int64)

    def artist_groups(self, track_ids: Iterable[str]) -> np.ndarray:
        """Artist of each track; a track with no known artist is its own group (it cannot be
        matched to others, so it is kept apart rather than pooled into one "unknown" artist).
        Names are compared case- and spacing-insensitively: Sturm's index spells one artist
        both "Rage Against the Machine" and "Rage Against The Machine"."""
        artists = self.tracks.set_index("track_id")["artist"]
        return np.array(
            [
                _artist_key(a) if isinstance(a, str) else f"unknown:{t}"
                for t, a in ((t, artists.get(t)) for t in track_ids)
            ],
            dtype=object,
        )

    # --- identity ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Hash of the track table (ids, genres, artists, splits): keys caches and results."""
        cols = ["track_id", "genre", "artist", "ff_split", "in_csv_30s"]
        blob = self.tracks[cols].astype(str).to_csv(index=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def checksum(self) -> str:
        """Content hash of the feature CSVs plus the names and sizes of all media files, stored
        with every result so a rerun on different data is never mixed with an old one."""
        h = hashlib.sha256(self.fingerprint().encode())
        for key in ("features_30s", "features_3s"):
            p = self.path(key)
            if p.exists():
                h.update(p.read_bytes())
        for col in ("image_path", "audio_path"):
            for p in self.tracks[col].dropna():
                h.update(f"{Path(p).name}:{os.path.getsize(p)}\n".encode())
        return h.hexdigest()[:16]

    # --- validation ---------------------------------------------------------------------------
    def check(self) -> tuple[list[str], list[str]]:
        """Validate the folder. Returns ``(errors, notes)``: errors make a benchmark impossible
        or wrong; notes describe what is partial (missing files, coverage per genre)."""
        errors: list[str] = []
        notes: list[str] = []
        m = self.manifest
        for key, segmented in (("features_30s", False), ("features_3s", True)):
            p = self.path(key)
            if not p.exists():
                which = "csv_3s" if segmented else "csv_30s"
                notes.append(f"{m.files[key]}: absent (the {which} feature set is unavailable)")
                continue
            try:
                df = self.features_csv(segmented=segmented)
            except DataError as exc:
                errors.append(str(exc))
                continue
            counts = df.groupby("label")["track_id"].nunique()
            notes.append(f"{m.files[key]}: {len(df)} rows, {df['track_id'].nunique()} tracks")
            if segmented:
                per = df.groupby("track_id").size()
                if per.nunique() > 1:
                    notes.append(
                        f"{m.files[key]}: segments per track range {per.min()}–{per.max()}"
                    )
            self._count_notes(m.files[key], counts, notes)
        try:
            tracks = self.tracks
        except DataError as exc:
            return ([*errors, str(exc)] if str(exc) not in errors else errors), notes
        for col, key in (("image_path", "images"), ("audio_path", "audio")):
            present = tracks[col].notna()
            if not self.path(key).is_dir():
                notes.append(f"{m.files[key]}/: absent")
                continue
            counts = tracks[present].groupby("genre").size()
            notes.append(f"{m.files[key]}/: {int(present.sum())} files")
            ignored = self._scan(key)[1]
            if ignored:
                n = sum(i.n_files for i in ignored)
                notes.append(f"{m.files[key]}/: {n} file(s) ignored:")
                notes.extend(f"  {i.path.relative_to(self.root)}: {i.reason}" for i in ignored)
            self._count_notes(m.files[key], counts, notes)
            if tracks["in_csv_30s"].any():
                lacking = tracks[tracks["in_csv_30s"] & ~present]["track_id"]
                if 0 < len(lacking) <= 10:
                    notes.append(f"{m.files[key]}/: no file for {', '.join(lacking)}")
        if self.path("artists").exists():
            n_art = tracks["artist"].dropna().map(_artist_key).nunique()
            n_unknown = int(tracks["artist"].isna().sum())
            notes.append(f"artists: {n_art} known, {n_unknown} tracks without an artist")
        else:
            notes.append(
                f"{m.files['artists']}: absent (the artist-grouped protocol is unavailable)"
            )
        if self.has_fault_filtered:
            got = tracks["ff_split"].value_counts().to_dict()
            notes.append(
                "fault-filtered split: "
                + ", ".join(f"{k} {got.get(k, 0)}" for k in ("train", "valid", "test"))
            )
            for part, n in m.fault_filtered_counts.items():
                if got.get(part, 0) != n and tracks["in_csv_30s"].sum() == len(self.classes) * (
                    m.expected_per_class or 0
                ):
                    errors.append(f"fault-filtered {part}: {got.get(part, 0)} tracks, expected {n}")
        else:
            notes.append("fault-filtered split lists: absent (that protocol is unavailable)")
        return errors, notes

    def _count_notes(self, what: str, counts: pd.Series, notes: list[str]) -> None:
        expected = self.manifest.expected_per_class
        missing = [c for c in self.classes if c not in counts.index]
        if missing:
            notes.append(f"{what}: no tracks of {', '.join(missing)}")
        if expected:
            short = {g: int(n) for g, n in counts.items() if n != expected}
            if short:
                notes.append(
                    f"{what}: per-genre counts differ from {expected}: "
                    + ", ".join(f"{g} {n}" for g, n in short.items())
                )
